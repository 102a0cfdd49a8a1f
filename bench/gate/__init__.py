"""Did a change make the servers slower? Statistics, comparing two runs, the CI gate (regress) and the
study of how good the gate is."""
