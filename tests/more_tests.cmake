# Tests registered by area; each line: hmb_add_test(name source... [TIMEOUT s]).
