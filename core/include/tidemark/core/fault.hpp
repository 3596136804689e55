#pragma once
// Fault injection for crash-safety tests: with TIDEMARK_FAULT=NAME@N in the environment,
// the N-th call of fault_point(NAME) kills the process with SIGKILL, as a power cut or the
// OOM killer would (no destructors, no flushing). Unset, fault_point is a no-op. Points:
//   atomic-write:half          half of a file's bytes are written under the temporary name
//   atomic-write:before-rename the temporary file is complete and flushed
//   atomic-write:after-rename  the file is in place, its directory not yet flushed
//   state:before-cleanup       a training state and LATEST are saved, older states remain
#include <string_view>

namespace tidemark {

void fault_point(std::string_view name);

}  // namespace tidemark
