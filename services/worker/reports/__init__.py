"""Reports: the class and school workbooks and the tasks that build them (training plans live in ``plans``)."""
