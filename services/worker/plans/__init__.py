"""Training plans: computed from a class's graded history (``draft``), narrated by the model (``narrative``, prompt
in ``shared/prompts/templates/plan-v1.j2``), stored by a task on the gpu queue beside grading (``tasks``)."""
