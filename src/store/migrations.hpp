// The schema's history: migration N (1-based) takes a database from user_version N-1 to N.
#pragma once

#include <span>
#include <string_view>

namespace parley::store::detail {

// Append new migrations at the end; never edit one that has shipped, since databases in the field
// have already run it.
std::span<const std::string_view> migrations();

}  // namespace parley::store::detail
