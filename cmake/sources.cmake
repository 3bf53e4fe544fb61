# Extra library sources. HMB_CUDA_SOURCES is compiled only when CUDA is on.
list(APPEND HMB_SOURCES)
set(HMB_CUDA_SOURCES)
