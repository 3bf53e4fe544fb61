# Tests registered by area; each line: hmb_add_test(name source... [TIMEOUT s]).
hmb_add_test(stress_random stress_random.c TIMEOUT 300)
hmb_add_test(test_arena test_arena.c TIMEOUT 120)
hmb_add_test(test_executor test_executor.c TIMEOUT 600)
hmb_add_test(test_memory test_memory.c TIMEOUT 120)
hmb_add_test(fault_injection fault_injection.c TIMEOUT 120)
hmb_add_test(test_bad_input test_bad_input.c TIMEOUT 120)
hmb_add_test(test_diagnostics test_diagnostics.c TIMEOUT 120)
