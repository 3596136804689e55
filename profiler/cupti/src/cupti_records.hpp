#pragma once
// CUPTI's activity records -> tidemark's plain records. The struct versions are those of
// the CUPTI headers compiled against (see cupti_records.cpp); the backend refuses to start
// when the loaded libcupti is another CUDA major.minor, whose layouts may differ.
#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "tidemark/profiler/activity_source.hpp"

namespace tidemark::profiler::detail {

// CUDA major*100 + minor whose record layouts this backend reads (CUPTI_API_VERSION / 100).
constexpr std::uint32_t kCuptiLayoutVersion = 1300;

// The plain record for a CUPTI record, or nullopt for what the timer does not use: other
// activity kinds (the RUNTIME/DRIVER API records enabled only so that CUPTI emits external
// correlations) and external correlations of kinds other than CUSTOM0. A kernel's name
// view points into CUPTI's memory.
std::optional<ActivityRecord> convert_cupti_record(const CUpti_Activity& record);

// Feeds every record the timer uses in a completed buffer to `sink`; returns how many
// CUPTI records the buffer held. A malformed buffer is logged and its rest skipped.
std::size_t parse_cupti_buffer(std::uint8_t* data, std::size_t valid_bytes,
                               const RecordSink& sink);

}  // namespace tidemark::profiler::detail
