"""The student chat on the worker side: the prompt from retrieved sources and history, streamed generation, and
the task that writes the answer into its chat turn as it grows."""
