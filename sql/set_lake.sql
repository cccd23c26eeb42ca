-- Points the views at a lake folder; every path reaches SQL through this one variable.
set variable lake = $lake
