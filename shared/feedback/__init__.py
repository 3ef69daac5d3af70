"""Feedback sheets to hand back to students: one essay with its marks, scores, comment and next steps, as .docx
(``docx_sheet``) or PDF (``pdf_sheet``), built from the database by ``sheet``. Both the web (one student, on
request) and the class downloads use these; nothing here loads a model."""
