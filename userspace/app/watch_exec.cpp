#include "app/watch_session.h"

#include "app/target.h"
#include "python/live_walk.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

extern "C" {
#include "fh/records.h"
}

namespace fh {

// The target exec'd another program: if it is Python and was not, or was
// and is not, or is another interpreter, the programs are rebuilt for it.
void WatchSession::after_exec()
{
	if (handing_over_) {
		exec_again_ = true; // once the hand-over is done
		return;
	}
	if (auto change = proc_.after_exec()) {
		const auto &next = change->next;
		hand_over(std::move(change->next),
			  "exec'd " + change->exe + " (" +
				  (next ? "Python 3." + std::to_string(next->minor) : "a native program") +
				  ")",
			  std::string(next ? "Python" : "native") + " frames from now on");
	}
}

// Load the programs for what the target runs now, let them take over, and
// drop the old ones, nothing captured twice or missed (see `control` in
// bpf/fh.bpf.c).
bool WatchSession::hand_over(std::optional<PythonRuntime> next, const std::string &why,
			const std::string &outcome)
{
	uint64_t t0 = monotonic_ns();
	CaptureConfig cfg = cfg_;
	cfg.predecessor = capture_.get();
	set_python(cfg, next ? &*next : nullptr);
	cfg.live = !next || cfg.follow_children || opts_.native;
	std::unique_ptr<Capture> successor;
	try {
		successor = std::make_unique<Capture>(cfg);
		successor->activate();
	} catch (const Error &e) {
		diag("pid " + std::to_string(tgid_) + " " + why +
		     ", but the programs for it failed to load (" + e.what() + "): " +
		     (proc_.python() ? "no Python frames" : "native frames") + " from now on");
		return false;
	}
	// What the old programs captured before the switch, then the switch.
	proc_.stop_stdlib_reader();
	if (!capture_->wait_idle(100'000'000))
		diag("the old programs were still running after 100 ms: records they write "
		    "from now on are lost");
	handing_over_ = true;
	drain();
	handing_over_ = false;
	retired_ += capture_->counters();
	loop_.remove(capture_->fd());
	loop_.add(successor->fd(), kRing);
	capture_ = std::move(successor);
	proc_.set_capture(capture_.get());
	if (family_)
		family_->set_capture(*capture_);
	proc_.take_python(std::move(next));
	diag("pid " + std::to_string(tgid_) + " " + why + ": " + outcome + " (programs loaded in " +
	     fmt("%.0f ms", (monotonic_ns() - t0) / 1e6) + ")");
	// It may have exec'd again while the programs loaded.
	if (std::exchange(exec_again_, false))
		after_exec();
	return true;
}

// A native watched process whose descendant maps a Python interpreter: the
// programs were loaded without the CPython walk (loading it makes
// attaching take a second more), and are loaded again with it.
void WatchSession::load_python_walk()
{
	if (!family_ || cfg_.children_python || walk_failed_ || handing_over_ ||
	    !family_->python_met() || proc_.python())
		return;
	cfg_.children_python = true;
	std::optional<PythonRuntime> none;
	if (!hand_over(none, "has a descendant running Python",
		       "its descendants' Python frames from now on")) {
		cfg_.children_python = false; // said; not tried again
		walk_failed_ = true;
	}
}

} // namespace fh
