// progress -- the engine's one-method window on the outside world.
//
// The engine reports stages and fractions; the CLI decides how (bar, log lines, nothing).
#pragma once

#include <string_view>

namespace superstack {

class Progress {
public:
	virtual ~Progress() = default;
	// `fraction` in [0, 1] of `stage`; `eta_seconds` < 0 when unknown. Called from any thread,
	// never concurrently (the engine serialises calls).
	virtual void update(std::string_view stage, double fraction, double eta_seconds) = 0;
	// A detail worth a line of its own, for -v (the memory plan, the pyramid). Default: ignored.
	virtual void note(std::string_view /*message*/) {}
	// Something the user must hear of even without -v (a frame left out, and why). Default: ignored.
	virtual void warn(std::string_view /*message*/) {}
};

// Reports nothing.
class NoProgress final : public Progress {
public:
	void update(std::string_view, double, double) override {}
};

} // namespace superstack
