# One interface target for LibTorch, plus one precompiled torch header that every
# torch translation unit reuses: a torch header costs ~20 s per file on one core.
# Targets that reuse the PCH must not add their own compile definitions (GCC would
# silently reject the PCH); put switches in generated headers instead.
# Installed, it names LibTorch's own imported target, which the package's find_dependency(Torch)
# defines with the user's include and library paths: no path of this machine is exported.
add_library(tidemark_torch INTERFACE)
target_link_libraries(tidemark_torch INTERFACE "$<BUILD_INTERFACE:${TORCH_LIBRARIES}>" "$<INSTALL_INTERFACE:torch>")
target_include_directories(tidemark_torch INTERFACE "$<BUILD_INTERFACE:${TORCH_INCLUDE_DIRS}>")
install(TARGETS tidemark_torch EXPORT tidemarkTargets)

add_library(tidemark_torch_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
target_link_libraries(tidemark_torch_pch PRIVATE tidemark_torch)
target_precompile_headers(tidemark_torch_pch PRIVATE <torch/torch.h> <torch/csrc/autograd/engine.h>)

# tidemark_use_torch_pch(target): link torch and reuse the shared precompiled header.
function(tidemark_use_torch_pch target)
  target_link_libraries(${target} PRIVATE tidemark_torch)
  target_precompile_headers(${target} REUSE_FROM tidemark_torch_pch)
endfunction()
