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

// Dump every thread now, the target running on; with descendants, every
// process of the tree, one incident each, all with the dump's number.  A
// refused user signal is the target's alone.
void WatchSession::live_dump(uint32_t trigger, const Refusal *refusal)
{
	std::vector<pid_t> members;
	if (family_ && !refusal)
		members = capture_->tree_members();
	if (members.empty()) {
		dump_root(trigger, refusal, 0);
		return;
	}
	uint64_t dump_id = new_dump_id();
	if (!root_gone_)
		dump_root(trigger, nullptr, dump_id);
	for (pid_t pid : members)
		dump_descendant(pid, trigger, dump_id);
}

// A descendant's threads now: its interpreter's, read from its memory, or
// its native threads through the iterator bound to it.
void WatchSession::dump_descendant(pid_t pid, uint32_t trigger, uint64_t dump_id)
{
	std::string who = "pid " + std::to_string(pid);
	try {
		const auto &root = proc_.python();
		if (auto rt = family_->python_of(pid, *capture_,
						 {root ? &*root : nullptr, proc_.stdlib()})) {
			Assembler::Output out;
			LiveDumpStats st;
			Event ev = read_python(pid, *rt, trigger, 0, out, st);
			ev.dump_id = dump_id;
			if (ev.py_threads.empty())
				diag(who + ": no Python thread state to dump (exiting, or not "
					   "initialised)");
			else
				handle(ev, {opts_.native ? &st : nullptr});
			process(out, nullptr);
			return;
		}
		Assembler::Output out;
		LiveDumpStats st = capture_->live_dump(trigger, assembler_, out, pid);
		for (auto &ev : out.events)
			if (ev.id == st.event_id)
				ev.dump_id = dump_id;
		process(out, &st);
	} catch (const Error &e) {
		// Gone since the tree was listed: its exit is said at the end.
		if (e.err() != ESRCH && e.err() != ENOENT)
			diag(who + ": " + e.what());
	}
}

// Dump the target's threads now.  A refused user signal is dumped as if it
// had been received: by the thread it was sent to.
void WatchSession::dump_root(uint32_t trigger, const Refusal *refusal, uint64_t dump_id)
{
	auto decorate = [&](Event &ev) {
		if (!refusal)
			return;
		ev.sig = refusal->sig;
		ev.si_code = 0; // SI_USER
		ev.sender = Sender{refusal->sender_tgid, 0, refusal->sender_uid,
				   refusal->sender_comm, false};
		ev.refused = true;
		ev.hit_tid = refusal->tid;
		for (auto &t : ev.threads)
			if (t.tid == refusal->tid)
				t.flags |= FH_THREAD_HIT;
	};
	const auto &python = proc_.python();
	if (python && !python->placed) {
		diag("pid " + std::to_string(tgid_) + ": its Python interpreter is not mapped yet: "
		    "nothing to dump");
		return;
	}
	if (python) {
		Assembler::Output out;
		LiveDumpStats st;
		Event ev = read_python(tgid_, *python, trigger, refusal ? refusal->tid : 0, out, st);
		decorate(ev);
		ev.dump_id = dump_id;
		if (ev.py_threads.empty())
			diag("pid " + std::to_string(tgid_) +
			     ": no Python thread state to dump (exiting, or not initialised)");
		else
			handle(ev, {opts_.native ? &st : nullptr});
		process(out, nullptr);
		return;
	}
	Assembler::Output out;
	LiveDumpStats st = capture_->live_dump(trigger, assembler_, out);
	for (auto &ev : out.events)
		if (ev.id == st.event_id) {
			decorate(ev);
			ev.dump_id = dump_id;
		}
	if (!st.event_id)
		diag("pid " + std::to_string(tgid_) + ": no thread left to dump (exiting)");
	process(out, &st);
}

// A Python process's threads now, read from its memory; with --native its
// native threads too, through the iterator (other records that arrive
// meanwhile are left in out).
Event WatchSession::read_python(pid_t pid, const PythonRuntime &rt, uint32_t trigger,
				uint32_t current_tid, Assembler::Output &out, LiveDumpStats &st)
{
	if (!opts_.native)
		return python_live_event(pid, rt, trigger, current_tid);
	return python_dump_with_native(*capture_, assembler_, out, pid, rt, trigger, current_tid,
				       &st);
}

void WatchSession::on_timeout(int pidfd, uint64_t expirations)
{
	if (expirations > 1) {
		timeouts_skipped_ += expirations - 1;
		diag(std::to_string(expirations - 1) + " timeout" + (expirations > 2 ? "s" : "") +
		    " skipped: the previous dump was still being taken");
	}
	live_dump(FH_TRIGGER_TIMEOUT);
	if (opts_.exit_after && !terminated_) {
		// faulthandler's exit=True ends the process after the dump.
		if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0) {
			terminated_ = true;
			diag("--exit: terminated pid " + std::to_string(tgid_) +
			    " (SIGKILL) after the timeout dump");
		} else if (errno != ESRCH) {
			diag("--exit: could not terminate pid " + std::to_string(tgid_) + ": " +
			    std::strerror(errno));
		}
	}
}

} // namespace fh
