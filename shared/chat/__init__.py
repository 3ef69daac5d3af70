"""The student Q&A assistant's pure parts, used by the web and the workers: safety filters, retrieval, history."""
