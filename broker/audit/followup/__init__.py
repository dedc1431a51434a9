"""Log follow-up (loggkontroll): what the console's overview, review queue, samples, flags and
report are built from — summary tables the sealer keeps in step with the chain."""
