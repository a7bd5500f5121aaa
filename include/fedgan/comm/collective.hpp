// collective_try: runs a step on every rank and turns any rank's exception into the same
// fedgan::Error on all ranks, so no rank is left blocked in the next collective. A LibTorch
// error gives its message without the C++ backtrace LibTorch appends.
#pragma once

#include "fedgan/comm/communicator.hpp"
#include "fedgan/core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace fedgan::comm {

template <class Fn>
auto collective_try(Communicator& comm, Fn&& fn) -> decltype(fn()) {
  std::string message;
  bool ok = true;
  if constexpr (std::is_void_v<decltype(fn())>) {
    try {
      fn();
    } catch (const std::exception& e) {
      ok = false;
      message = error_message(e);
    }
    comm.agree_ok(ok, message);
  } else {
    decltype(fn()) result{};
    try {
      result = fn();
    } catch (const std::exception& e) {
      ok = false;
      message = error_message(e);
    }
    comm.agree_ok(ok, message);
    return result;
  }
}

// "Rank 0 does it, every rank agrees": `fn` runs on rank 0 only (writing files, reading a
// file whose content is then broadcast), and every rank learns whether it worked.
template <class Fn>
void run_on_root(Communicator& comm, Fn&& fn) {
  collective_try(comm, [&] {
    if (comm.is_root()) fn();
  });
}

// Each named int64 field of `value` becomes its maximum over ranks, in one allreduce_max:
// `fields` lists the struct's members (`&Flags::stop`), so callers name flags, not indices.
template <class T, std::size_t N>
void allreduce_max_fields(Communicator& comm, T& value, std::int64_t T::*const (&fields)[N]) {
  std::int64_t slots[N];
  for (std::size_t i = 0; i < N; ++i) slots[i] = value.*fields[i];
  comm.allreduce_max(slots, N);
  for (std::size_t i = 0; i < N; ++i) value.*fields[i] = slots[i];
}

}  // namespace fedgan::comm
