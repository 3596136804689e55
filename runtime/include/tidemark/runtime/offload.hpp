#pragma once
// Offload to host memory: what a plan's `offload` nodes (core/plan.hpp) and Hugging Face's
// gradient checkpointing option offload=true do at run time. The planner's side, when bytes
// leave the device and come back and what the copies cost, is Note [offload] in
// planner/simulator.hpp; the executor follows it.
//
// Note [offload runtime]
//  - A checkpoint offloaded keeps its inputs that require grad in pinned host memory from
//    its forward to its backward, instead of on the device (checkpoint.cpp).
//  - A save node offloaded runs its stages with saved-tensor hooks, which LibTorch offers
//    only to Python: tidemark installs an autograd engine whose default hooks are active
//    while such a stage runs its forward. Every tensor the stage's autograd saves is
//    recorded; when the forward ends, each storage that only autograd still holds (not an
//    input, an output, a parameter or a buffer) goes to the host, and the step waits for
//    the copies and frees the device bytes. When the stage's backward begins, every such
//    storage is allocated again and copied back; each saved tensor waits for its own copy
//    when the backward unpacks it.
//  - On CUDA, copies run on a side stream per direction into pinned buffers, ordered with
//    events: a copy out starts after the kernels that made the tensor, and compute waits
//    for a copy in before it reads the tensor.
//  - On the CPU there is no separate memory to offload to: plans and options that offload
//    are refused there. Tests switch on an emulated link (offload_testing::emulate_host_link_on_cpu)
//    that copies into memory the allocator hook does not count, so the whole choreography,
//    the gradients and the measured device peak are tested without a GPU.
#include <cstdint>
#include <string>
#include <torch/torch.h>

#include "tidemark/core/profile.hpp"

namespace tidemark::runtime {

// Whether `device` can offload: CUDA, or the CPU with the testing link switched on.
bool can_offload(const torch::Device& device);

// Refuses (UserError) offloading up to `host_bytes` on `device` before a run starts: a device
// that cannot offload, no pinned memory, or more host memory than the machine has free
// (MemAvailable). `what` names what asked ("the plan", "--gc-option offload=true").
void check_offload(const torch::Device& device, std::uint64_t host_bytes, const std::string& what);

// Bytes of host memory free for new allocations (MemAvailable of /proc/meminfo; 0 if unknown).
std::uint64_t host_memory_available();

// The host link's bandwidth in each direction, copying `bytes` through pinned buffers on a
// side stream (the median of a few copies). Not measured (zeros) where the device cannot
// offload.
HostLink measure_host_link(const torch::Device& device, std::uint64_t bytes);

namespace offload_testing {
// Tests only: lets the CPU "offload" into memory the allocator hook does not count, with
// plain copies, so that offload plans run and are measured without a GPU.
void emulate_host_link_on_cpu(bool on);
}  // namespace offload_testing

}  // namespace tidemark::runtime
