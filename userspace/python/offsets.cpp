#include "python/python.h"

#include "util/error.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

extern "C" {
#include "fh/python.h"
}

// Where a CPython's structures keep what fh-bpf reads: built in for
// 3.6-3.12 (one table a version), read from the interpreter's own
// _Py_DebugOffsets from 3.13.

namespace fh {

namespace {

fh_py_offsets none()
{
	fh_py_offsets o;
	std::memset(&o, 0xff, sizeof(o)); // every field FH_PY_NONE
	o.version = 0;
	o.flags = 0;
	o.module_type = 0;
	return o;
}

// What every version shares: objects, strings, bytes.
void common(fh_py_offsets &o, int minor)
{
	o.object_type = 8;
	o.type_flags = 168;
	o.str_length = 16;
	o.str_state = 32;
	o.str_ascii_data = minor >= 12 ? 40 : 48;
	o.str_compact_data = minor >= 12 ? 56 : 72;
	o.str_legacy_data = minor >= 12 ? 56 : 72;
	o.bytes_size = 16;
	o.bytes_data = 32;
	o.tstate_next = 8;
	o.tstate_interp = 16;
}

} // namespace

std::optional<fh_py_offsets> builtin_offsets(int minor)
{
	if (minor < 6 || minor > 12)
		return std::nullopt;
	fh_py_offsets o = none();
	o.version = 0x03000000u | static_cast<uint32_t>(minor) << 16;
	common(o, minor);
	if (minor <= 10) {
		// PyFrameObject chains.
		o.frame_kind = FH_PY_FRAME_OBJECT;
		o.tstate_frame = 24;
		o.frame_back = 24;
		o.frame_code = 32;
		o.interp_next = 0;
		o.interp_threads_head = 8;
		o.tstate_thread_id = minor == 6 ? 152 : 176;
		o.frame_lasti = minor == 6 ? 120 : minor <= 9 ? 104 : 96;
		o.code_firstlineno = minor <= 7 ? 36 : 40;
		o.code_filename = minor <= 7 ? 96 : 104;
		o.code_name = minor <= 7 ? 104 : 112;
		o.code_linetable = minor <= 7 ? 112 : 120;
		if (minor == 10)
			o.flags |= FH_PY_LASTI_UNITS;
	}
	switch (minor) {
	case 6:
		o.flags |= FH_PY_RUNTIME_IS_INTERP_HEAD;
		o.runtime_interpreters_head = 0;
		break;
	case 7:
		o.runtime_interpreters_head = 24;
		o.runtime_autotss_key = 1504;
		break;
	case 8:
		o.runtime_interpreters_head = 32;
		o.runtime_autotss_key = 1392;
		break;
	case 9:
	case 10:
		o.runtime_interpreters_head = 32;
		o.runtime_autotss_key = 584;
		o.interp_gc_collecting = 816;
		if (minor == 10) {
			o.interp_modules = 856;
			o.interp_sysdict = 872;
		}
		break;
	case 11:
	case 12: {
		bool v11 = minor == 11;
		o.frame_kind = FH_PY_FRAME_INTERPRETER;
		o.runtime_interpreters_head = 40;
		o.runtime_autotss_key = v11 ? 592 : 1544;
		o.interp_next = 0;
		o.interp_threads_head = v11 ? 16 : 72;
		o.interp_gc_collecting = v11 ? 848 : 312;
		o.tstate_cframe = 56;
		o.cframe_current_frame = v11 ? 8 : 0;
		o.tstate_thread_id = v11 ? 152 : 136;
		o.tstate_native_thread_id = v11 ? 160 : 144;
		o.frame_back = v11 ? 48 : 8;
		o.frame_code = v11 ? 32 : 0;
		o.frame_instr_ptr = 56;
		o.frame_owner = v11 ? 69 : 70;
		// 3.11 marks the frame a C call entered; 3.12+ pushes a shim
		// frame (owner FRAME_OWNED_BY_CSTACK) below it instead.
		o.frame_is_entry = v11 ? 68 : FH_PY_NONE; // owner the byte after: read with it
		o.owner_skip_min = v11 ? FH_PY_NONE : 3; // FRAME_OWNED_BY_CSTACK
		o.code_firstlineno = v11 ? 72 : 68;
		o.code_filename = 112;
		o.code_name = 120;
		o.code_linetable = 136;
		o.code_adaptive = v11 ? 184 : 192;
		o.interp_modules = v11 ? 888 : 944;
		o.interp_sysdict = v11 ? 904 : 352;
		break;
	}
	default:
		break;
	}
	return o;
}

namespace {

// The _Py_DebugOffsets layouts: field names in order, after cookie, version
// and free_threaded.  3.14's gained fields during its development; the one
// whose fixed points check out is used.
const std::vector<const char *> kLayout313 = {
	"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
	"interp.size", "interp.id", "interp.next", "interp.threads_head", "interp.gc",
	"interp.imports_modules", "interp.sysdict", "interp.builtins", "interp.ceval_gil",
	"interp.gil", "interp.gil_enabled", "interp.gil_locked", "interp.gil_holder",
	"tstate.size", "tstate.prev", "tstate.next", "tstate.interp", "tstate.current_frame",
	"tstate.thread_id", "tstate.native_thread_id", "tstate.datastack_chunk", "tstate.status",
	"frame.size", "frame.previous", "frame.executable", "frame.instr_ptr", "frame.localsplus",
	"frame.owner",
	"code.size", "code.filename", "code.name", "code.qualname", "code.linetable",
	"code.firstlineno", "code.argcount", "code.localsplusnames", "code.localspluskinds",
	"code.co_code_adaptive",
	"object.size", "object.ob_type",
	"type.size", "type.tp_name", "type.tp_repr", "type.tp_flags",
	"tuple.size", "tuple.ob_item", "tuple.ob_size",
	"list.size", "list.ob_item", "list.ob_size",
	"dict.size", "dict.ma_keys", "dict.ma_values",
	"float.size", "float.ob_fval",
	"long.size", "long.lv_tag", "long.ob_digit",
	"bytes.size", "bytes.ob_size", "bytes.ob_sval",
	"unicode.size", "unicode.state", "unicode.length", "unicode.asciiobject_size",
	"gc.size", "gc.collecting",
};

std::vector<const char *> layout_314(bool tlbc)
{
	std::vector<const char *> l = {
		"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
		"interp.size", "interp.id", "interp.next", "interp.threads_head",
		"interp.threads_main", "interp.gc", "interp.imports_modules", "interp.sysdict",
		"interp.builtins", "interp.ceval_gil", "interp.gil", "interp.gil_enabled",
		"interp.gil_locked", "interp.gil_holder"};
	if (tlbc) {
		l.push_back("interp.code_object_generation");
		l.push_back("interp.tlbc_generation");
	}
	for (const char *f : {"tstate.size", "tstate.prev", "tstate.next", "tstate.interp",
			      "tstate.current_frame", "tstate.thread_id", "tstate.native_thread_id",
			      "tstate.datastack_chunk", "tstate.status", "frame.size",
			      "frame.previous", "frame.executable", "frame.instr_ptr",
			      "frame.localsplus", "frame.owner", "frame.stackpointer"})
		l.push_back(f);
	if (tlbc)
		l.push_back("frame.tlbc_index");
	for (const char *f : {"code.size", "code.filename", "code.name", "code.qualname",
			      "code.linetable", "code.firstlineno", "code.argcount",
			      "code.localsplusnames", "code.localspluskinds", "code.co_code_adaptive"})
		l.push_back(f);
	if (tlbc)
		l.push_back("code.co_tlbc");
	for (const char *f :
	     {"object.size", "object.ob_type", "type.size", "type.tp_name", "type.tp_repr",
	      "type.tp_flags", "tuple.size", "tuple.ob_item", "tuple.ob_size", "list.size",
	      "list.ob_item", "list.ob_size", "set.size", "set.used", "set.table", "set.mask",
	      "dict.size", "dict.ma_keys", "dict.ma_values", "float.size", "float.ob_fval",
	      "long.size", "long.lv_tag", "long.ob_digit", "bytes.size", "bytes.ob_size",
	      "bytes.ob_sval", "unicode.size", "unicode.state", "unicode.length",
	      "unicode.asciiobject_size", "gc.size", "gc.collecting", "gen.size", "gen.gi_name",
	      "gen.gi_iframe", "gen.gi_frame_state"})
		l.push_back(f);
	return l;
}

std::optional<std::map<std::string, uint64_t>> read_layout(const uint8_t *data, size_t len,
							   const std::vector<const char *> &layout)
{
	if (len < 24 + 8 * layout.size())
		return std::nullopt;
	std::map<std::string, uint64_t> f;
	for (size_t i = 0; i < layout.size(); i++) {
		uint64_t v;
		std::memcpy(&v, data + 24 + 8 * i, sizeof(v));
		f[layout[i]] = v;
	}
	// Fixed points of the object ABI: a layout read with the wrong field
	// order misses them.
	if (f["object.size"] != 16 || f["object.ob_type"] != 8 || f["unicode.length"] != 16 ||
	    f["unicode.state"] != 32 || f["bytes.ob_size"] != 16 || f["tuple.ob_size"] != 16 ||
	    f["list.ob_size"] != 16 || f["tstate.next"] == 0)
		return std::nullopt;
	return f;
}

} // namespace

fh_py_offsets offsets_from_debug(const uint8_t *data, size_t len)
{
	if (len < 24 || std::memcmp(data, "xdebugpy", 8) != 0)
		throw Error("no _Py_DebugOffsets cookie", EINVAL);
	uint64_t version, free_threaded;
	std::memcpy(&version, data + 8, 8);
	std::memcpy(&free_threaded, data + 16, 8);
	int major = static_cast<int>(version >> 24 & 0xff);
	int minor = static_cast<int>(version >> 16 & 0xff);
	if (major != 3 || minor < 13)
		throw Error("_Py_DebugOffsets with an unexpected version 0x" + [&] {
			char b[20];
			std::snprintf(b, sizeof(b), "%llx", static_cast<unsigned long long>(version));
			return std::string(b);
		}(),
			    EINVAL);
	if (free_threaded)
		throw Error("free-threaded CPython builds are not supported", EINVAL);
	std::optional<std::map<std::string, uint64_t>> f;
	if (minor == 13)
		f = read_layout(data, len, kLayout313);
	else
		for (bool tlbc : {true, false})
			if (!f)
				f = read_layout(data, len, layout_314(tlbc));
	if (!f)
		throw Error("unrecognised _Py_DebugOffsets layout for Python 3." +
				    std::to_string(minor),
			    EINVAL);
	auto &v = *f;
	for (const auto &[name, value] : v)
		if (value > (1u << 24) && name.find(".size") == std::string::npos) 
			throw Error("implausible _Py_DebugOffsets field " + name, EINVAL);
	auto s = [&](const char *name) { return static_cast<__s32>(v.at(name)); };

	fh_py_offsets o = none();
	common(o, minor);
	o.version = static_cast<uint32_t>(version);
	o.frame_kind = FH_PY_FRAME_INTERPRETER;
	if (minor >= 14)
		o.flags |= FH_PY_TAGGED_EXECUTABLE;
	o.owner_skip_min = 3; // 3.13: CSTACK = 3; 3.14: INTERPRETER = 3, CSTACK = 4
	o.runtime_interpreters_head = s("runtime.interpreters_head");
	// Not in the debug offsets; measured for 3.13 (reference table).
	o.runtime_autotss_key = minor == 13 ? 2160 : FH_PY_NONE;
	o.interp_next = s("interp.next");
	o.interp_threads_head = s("interp.threads_head");
	o.interp_gc_collecting = s("interp.gc") + s("gc.collecting");
	o.tstate_next = s("tstate.next");
	o.tstate_interp = s("tstate.interp");
	o.tstate_current_frame = s("tstate.current_frame");
	o.tstate_thread_id = s("tstate.thread_id");
	o.tstate_native_thread_id = s("tstate.native_thread_id");
	o.frame_back = s("frame.previous");
	o.frame_code = s("frame.executable");
	o.frame_instr_ptr = s("frame.instr_ptr");
	o.frame_owner = s("frame.owner");
	o.code_firstlineno = s("code.firstlineno");
	o.code_filename = s("code.filename");
	o.code_name = s("code.name");
	o.code_linetable = s("code.linetable");
	o.code_adaptive = s("code.co_code_adaptive");
	o.object_type = s("object.ob_type");
	o.type_flags = s("type.tp_flags");
	o.str_length = s("unicode.length");
	o.str_state = s("unicode.state");
	o.str_ascii_data = s("unicode.asciiobject_size");
	o.str_compact_data = o.str_ascii_data + 16; // + utf8_length, utf8
	o.str_legacy_data = o.str_compact_data;
	o.bytes_size = s("bytes.ob_size");
	o.bytes_data = s("bytes.ob_sval");
	o.interp_modules = s("interp.imports_modules");
	o.interp_sysdict = s("interp.sysdict");
	return o;
}

} // namespace fh
