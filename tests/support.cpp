#include "support.h"

#include <catch2/catch.hpp>

#include <dirent.h>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace fhtest {

std::string build_dir()
{
	const char *d = std::getenv("FH_BUILD");
	return d && *d ? d : "build";
}

std::string source_dir()
{
	const char *d = std::getenv("FH_SOURCE_DIR");
	return d && *d ? d : ".";
}

std::map<std::string, int> markers(const std::string &path)
{
	std::map<std::string, int> out;
	std::ifstream in(path);
	std::string line;
	static const std::regex re(R"(/\* @([a-z_]+) \*/)");
	for (int n = 1; std::getline(in, line); n++) {
		std::smatch m;
		if (std::regex_search(line, m, re))
			out[m[1]] = n;
	}
	return out;
}

Pipe::Pipe()
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) == 0) {
		read = fds[0];
		write = fds[1];
	}
}

Pipe::~Pipe()
{
	close_read();
	close_write();
}

void Pipe::close_read()
{
	if (read >= 0)
		close(read);
	read = -1;
}

void Pipe::close_write()
{
	if (write >= 0)
		close(write);
	write = -1;
}

pid_t spawn(const std::vector<std::string> &argv, const SpawnOptions &opts)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	// Child: move the wanted fds above every target number first, so a
	// dup2 cannot clobber a source that is still to be copied.
	std::vector<std::pair<int, int>> fds;
	for (auto [child, parent] : opts.fds)
		fds.emplace_back(child, fcntl(parent, F_DUPFD_CLOEXEC, 100));
	for (auto [child, tmp] : fds)
		if (dup2(tmp, child) < 0)
			_exit(126);
	if (!opts.stdout_path.empty()) {
		int fd = open(opts.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
	}
	if (!opts.stderr_path.empty() && opts.stderr_path == opts.stdout_path) {
		dup2(1, 2); // one file, one offset
	} else if (!opts.stderr_path.empty()) {
		int fd = open(opts.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
	}
	if (opts.uid != static_cast<uid_t>(-1)) {
		if (setgroups(0, nullptr) != 0 || setgid(opts.uid) != 0 || setuid(opts.uid) != 0)
			_exit(125);
	}
	std::vector<char *> args;
	for (const auto &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);
	execv(args[0], args.data());
	_exit(127);
}

std::optional<int> wait_exit(pid_t pid, int timeout_ms)
{
	int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
	if (pidfd >= 0) {
		struct pollfd p = {pidfd, POLLIN, 0};
		int n;
		do
			n = poll(&p, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		close(pidfd);
		if (n == 0)
			return std::nullopt;
	}
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return std::nullopt;
	return status;
}

std::optional<std::string> read_line(int fd, int timeout_ms)
{
	std::string line;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int n = poll(&p, 1, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return std::nullopt;
		char c;
		ssize_t r = ::read(fd, &c, 1);
		if (r <= 0)
			return std::nullopt;
		if (c == '\n')
			return line;
		line += c;
	}
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

std::string temp_path(const std::string &stem)
{
	static int counter = 0;
	return "/tmp/fh-bpf-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++) +
	       "-" + stem;
}

std::string run_capture(const std::vector<std::string> &argv, int *status, bool with_stderr)
{
	std::string out = temp_path("capture.out");
	SpawnOptions o;
	o.stdout_path = out;
	o.stderr_path = with_stderr ? out : "/dev/null";
	pid_t pid = spawn(argv, o);
	auto st = wait_exit(pid, 120000);
	if (!st) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
	}
	if (status)
		*status = st ? *st : -1;
	std::string text = read_file(out);
	unlink(out.c_str());
	return text;
}

std::vector<std::string> files_in(const std::string &dir)
{
	std::vector<std::string> out;
	DIR *d = opendir(dir.c_str());
	REQUIRE(d != nullptr);
	while (struct dirent *e = readdir(d))
		if (e->d_name[0] != '.')
			out.push_back(e->d_name);
	closedir(d);
	return out;
}

void remove_dir(const std::string &dir)
{
	for (const auto &name : files_in(dir))
		unlink((dir + "/" + name).c_str());
	rmdir(dir.c_str());
}

std::vector<std::string> split_dumps(const std::string &text, const std::string &prefix)
{
	std::vector<std::string> out;
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line)) {
		if (line.rfind(prefix, 0) == 0)
			out.emplace_back();
		if (!out.empty())
			out.back() += line + "\n";
	}
	return out;
}

std::string python_json(const std::string &json, const std::string &expr)
{
	std::string path = temp_path("record.json");
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, json.data(), json.size()) == static_cast<ssize_t>(json.size()));
	close(fd);
	int status = -1;
	std::string out = run_capture(
		{"/usr/bin/python3", "-c",
		 "import json, sys\nd = json.load(open(sys.argv[1], encoding='utf-8'))\n"
		 "print(repr((" +
			 expr + ")))",
		 path},
		&status);
	unlink(path.c_str());
	INFO(json);
	REQUIRE(status == 0);
	if (!out.empty() && out.back() == '\n')
		out.pop_back();
	return out;
}

std::string python_json_literal(const std::string &ascii)
{
	std::string out = "\"";
	for (char c : ascii) {
		if (c == '"' || c == '\\')
			out += std::string("\\") + c;
		else if (c == '\n')
			out += "\\n";
		else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
			out += "?"; // not ASCII text: the comparison fails, visibly
		else
			out += c;
	}
	return out + "\"";
}

std::string without_notes(const std::string &text)
{
	std::istringstream in(text);
	std::string line, out;
	while (std::getline(in, line))
		if (line.rfind("fh-bpf: ", 0) != 0)
			out += line + "\n";
	return out;
}

ParsedTraceback parse_traceback(const std::string &text, bool header)
{
	static const std::regex thread_re(
		R"(^(Current thread|Thread) 0x([0-9a-f]{16}) \(most recent call first\):$)");
	static const std::regex file_re(R"re(^  File "(.*)", line (\d+) in (.*)$)re");
	// A demangled C++ name may hold spaces.
	static const std::regex binary_re(R"re(^  Binary file (".*"|'<unknown>'),? (at (.+) )?\[0x[0-9a-f]+\]$)re");
	ParsedTraceback tb;
	std::istringstream in(text);
	std::string line;
	bool first = header;
	while (std::getline(in, line)) {
		std::smatch m;
		if (first) {
			tb.header = line;
			first = false;
			continue;
		}
		if (line.empty())
			continue;
		if (line.rfind("fh-bpf: ", 0) == 0) {
			tb.notes.push_back(line);
		} else if (std::regex_match(line, m, thread_re)) {
			ParsedThread t;
			t.current = m[1] == "Current thread";
			t.pthread = std::stoul(m[2], nullptr, 16);
			tb.threads.push_back(t);
		} else if (!tb.threads.empty() && std::regex_match(line, m, file_re)) {
			ParsedFrame f;
			f.source = true;
			f.file = m[1];
			f.line = std::stoi(m[2]);
			f.function = m[3];
			f.raw = line;
			tb.threads.back().frames.push_back(f);
		} else if (!tb.threads.empty() && std::regex_match(line, m, binary_re)) {
			ParsedFrame f;
			f.raw = line;
			f.function = m[3];
			tb.threads.back().frames.push_back(f);
		} else if (!tb.threads.empty() && line.rfind("  ", 0) == 0) {
			tb.threads.back().other_lines.push_back(line);
		} else {
			tb.unparsed.push_back(line);
		}
	}
	return tb;
}

std::vector<std::pair<std::string, int>> frames_in(const std::vector<ParsedFrame> &frames,
						   const std::string &file)
{
	std::vector<std::pair<std::string, int>> out;
	for (const auto &f : frames)
		if (f.source && f.file.size() >= file.size() &&
		    f.file.compare(f.file.size() - file.size(), file.size(), file) == 0)
			out.emplace_back(f.function, f.line);
	return out;
}

bool is_subsequence(const std::vector<std::pair<std::string, int>> &needle,
		    const std::vector<std::pair<std::string, int>> &hay)
{
	size_t i = 0;
	for (const auto &h : hay)
		if (i < needle.size() && h == needle[i])
			i++;
	return i == needle.size();
}

} // namespace fhtest
