#include "python/mixed.h"

#include <string_view>

namespace fh {

namespace {

constexpr std::string_view kEvalFunction = "_PyEval_EvalFrameDefault";

// The native thread a Python thread runs on: the same pthread_t, else the
// same TID.
Thread *native_of(const Thread &py, std::vector<Thread> &native, std::vector<bool> &used)
{
	for (size_t i = 0; i < native.size(); i++)
		if (!used[i] && py.pthread_id && native[i].pthread_id == py.pthread_id) {
			used[i] = true;
			return &native[i];
		}
	for (size_t i = 0; i < native.size(); i++)
		if (!used[i] && py.tid && native[i].tid == py.tid) {
			used[i] = true;
			return &native[i];
		}
	return nullptr;
}

// One thread's frames merged.  A physical frame is a run of inlined frames
// and the function they were inlined into (NativeFrame::inlined); when the
// evaluation loop is one of them, it and the frames inlined into it are
// replaced by the Python frames its call ran.  False when the calls and the
// evaluation loop's frames do not pair up and the native stack was whole.
bool merge(std::vector<StackFrame> &out, const std::vector<StackFrame> &py,
	   const EvalCalls &calls, bool py_cut, const std::vector<StackFrame> &native,
	   bool native_cut, bool all, bool *frames_cut)
{
	// The interpreter's own frames (those of the module the evaluation
	// loop is in) are left out, but for the ones a signal or sample hit
	// in it: the newest frames, up to the first of another module.
	const std::string *interpreter = nullptr;
	for (const StackFrame &sf : native)
		if (const auto *f = std::get_if<NativeFrame>(&sf); f && is_eval_frame(*f)) {
			interpreter = &f->module;
			break;
		}
	bool top = true; // still in the newest frames of the interpreter's module
	size_t shown = 0; // native frames
	bool cut = false;
	size_t next_py = 0, next_call = 0;
	size_t physical_start = 0; // in out: where the current physical frame began
	bool extra = false;	   // evaluation loop frames with no call left
	for (const StackFrame &sf : native) {
		const auto *f = std::get_if<NativeFrame>(&sf);
		if (!f) {
			out.push_back(sf);
			continue;
		}
		bool eval = is_eval_frame(*f);
		bool own = interpreter && f->module == *interpreter;
		if (eval && next_call < calls.size() && calls[next_call] > 0) {
			top = false;
			// Its callees inlined into it are the loop's own work.
			out.resize(physical_start);
			for (uint32_t k = 0; k < calls[next_call] && next_py < py.size(); k++)
				out.push_back(py[next_py++]);
			next_call++;
			physical_start = out.size();
			continue;
		}
		if (eval && next_call < calls.size()) {
			next_call++; // a call that ran no frame shown: kept as native
		} else if (eval && py_cut) {
			// It ran frames beyond the 100 shown: not shown either.
			if (!f->inlined)
				physical_start = out.size();
			continue;
		} else if (eval) {
			extra = true;
		}
		top = top && own;
		// The interpreter's frames but the newest; a loop frame left (no
		// Python frames for it) stays: it says where Python code ran.
		if (all || top || !own || eval) {
			if (shown < kMaxFrames) {
				out.push_back(sf);
				shown++;
			} else {
				cut = true; // the Python frames older still have their place
			}
		}
		if (!f->inlined)
			physical_start = out.size();
	}
	// Older than the native frames captured (a stack deeper than the copy),
	// or not paired: after them, nothing lost.
	bool left = next_py < py.size();
	while (next_py < py.size())
		out.push_back(py[next_py++]);
	*frames_cut = cut;
	return native_cut || (!extra && !left);
}

} // namespace

bool is_eval_frame(const NativeFrame &f)
{
	std::string_view name = f.function;
	return name.substr(0, kEvalFunction.size()) == kEvalFunction &&
	       (name.size() == kEvalFunction.size() || name[kEvalFunction.size()] == '.');
}

std::vector<Thread> mix_threads(std::vector<Thread> python, const std::vector<EvalCalls> &calls,
				std::vector<Thread> native, const std::vector<uint64_t> &states,
				bool all, MixStats &stats)
{
	std::vector<Thread> out;
	std::vector<bool> used(native.size(), false);
	static const EvalCalls kNone;
	for (size_t i = 0; i < python.size(); i++) {
		Thread &t = python[i];
		Thread *n = native_of(t, native, used);
		if (!n) {
			stats.no_native++;
			out.push_back(std::move(t));
			continue;
		}
		Thread mixed = t;
		mixed.frames.clear();
		if (mixed.name.empty())
			mixed.name = n->name;
		if (!mixed.tid)
			mixed.tid = n->tid;
		bool cut = false;
		if (!merge(mixed.frames, t.frames, i < calls.size() ? calls[i] : kNone, t.truncated,
			   n->frames, n->truncated, all, &cut))
			stats.unpaired++;
		mixed.truncated = t.truncated || n->truncated || cut;
		out.push_back(std::move(mixed));
	}
	// The threads with no thread state: C threads of an extension, the
	// interpreter's before it made one.  The one a signal hit first.
	for (size_t i = 0; i < native.size(); i++) {
		// A thread state's thread beyond the threads shown.
		for (uint64_t p : states)
			used[i] = used[i] || (p && p == native[i].pthread_id);
		if (used[i])
			continue;
		if (out.size() >= kMaxThreads) {
			stats.native_cut++;
			continue;
		}
		if (native[i].current)
			out.insert(out.begin(), std::move(native[i]));
		else
			out.push_back(std::move(native[i]));
	}
	return out;
}

void mix_losses(const MixStats &s, std::vector<Loss> &out)
{
	auto threads = [](uint32_t n) {
		return std::to_string(n) + (n == 1 ? " thread's" : " threads'");
	};
	if (s.unpaired)
		out.push_back({"native_unpaired", s.unpaired,
			       "--native: " + threads(s.unpaired) +
				       " Python frames did not pair up with the evaluation loop's "
				       "native frames (the thread ran on between the two reads, or "
				       "the interpreter has no symbols): those left over follow the "
				       "native frames"});
	if (s.no_native)
		out.push_back({"native_missing", s.no_native,
			       "--native: " + threads(s.no_native) +
				       " native stacks were not captured: Python frames only"});
	if (s.native_cut)
		out.push_back({"threads_skipped", s.native_cut,
			       "--native: " + std::to_string(s.native_cut) +
				       (s.native_cut == 1 ? " thread" : " threads") +
				       " without a Python thread state not shown (at most " +
				       std::to_string(kMaxThreads) + " threads)"});
}

} // namespace fh
