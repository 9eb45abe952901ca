// cancel -- a process-wide request to stop, set from a signal handler, polled by long loops.
#pragma once

namespace superstack {

void request_cancel() noexcept;   // async-signal-safe
bool cancel_requested() noexcept;
void reset_cancel() noexcept;

} // namespace superstack
