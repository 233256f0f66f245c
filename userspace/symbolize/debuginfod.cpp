#include "symbolize/debuginfod.h"

#include <dlfcn.h>
#include <elfutils/debuginfod.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fh {

// The library's entry points fh-bpf uses, typed from its own header.
struct Debuginfod::Api {
	void *handle = nullptr;
	decltype(&debuginfod_begin) begin = nullptr;
	decltype(&debuginfod_find_debuginfo) find_debuginfo = nullptr;
	decltype(&debuginfod_end) end = nullptr;
};

Debuginfod::~Debuginfod()
{
	if (!api_)
		return;
	if (client_)
		api_->end(static_cast<debuginfod_client *>(client_));
	// The handle stays open: libcurl registers handlers it keeps.
	delete api_;
}

bool Debuginfod::configured()
{
	const char *urls = std::getenv("DEBUGINFOD_URLS");
	return urls && urls[strspn(urls, " \t")];
}

bool Debuginfod::open()
{
	if (client_)
		return true;
	failed_ = true;
	void *h = dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		error_ = "debuginfod: libdebuginfod.so.1 cannot be loaded (Debian: libdebuginfod1)";
		return false;
	}
	api_ = new Api;
	api_->handle = h;
	api_->begin = reinterpret_cast<decltype(&debuginfod_begin)>(dlsym(h, "debuginfod_begin"));
	api_->find_debuginfo = reinterpret_cast<decltype(&debuginfod_find_debuginfo)>(
		dlsym(h, "debuginfod_find_debuginfo"));
	api_->end = reinterpret_cast<decltype(&debuginfod_end)>(dlsym(h, "debuginfod_end"));
	if (!api_->begin || !api_->find_debuginfo || !api_->end) {
		error_ = "debuginfod: libdebuginfod.so.1 lacks the functions fh-bpf calls";
		return false;
	}
	client_ = api_->begin();
	if (!client_) {
		error_ = "debuginfod: the client could not be started";
		return false;
	}
	failed_ = false;
	return true;
}

std::string Debuginfod::find_debuginfo(const std::string &build_id)
{
	if (build_id.empty() || failed_ || !open())
		return {};
	char *path = nullptr;
	int fd = api_->find_debuginfo(static_cast<debuginfod_client *>(client_),
				      reinterpret_cast<const unsigned char *>(build_id.data()),
				      static_cast<int>(build_id.size()), &path);
	std::string out;
	if (fd >= 0) {
		out = path ? path : "";
		close(fd);
	} else if (fd != -ENOENT) {
		// Not "no server has it": none could be asked.
		const char *urls = std::getenv("DEBUGINFOD_URLS");
		error_ = std::string("debuginfod (") + (urls ? urls : "") +
			 "): " + std::strerror(-fd);
		failed_ = true;
	}
	std::free(path);
	return out;
}

} // namespace fh
