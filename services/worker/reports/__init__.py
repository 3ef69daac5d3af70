"""Reports: class and school workbooks, personalised training plans, and the tasks that build them."""
