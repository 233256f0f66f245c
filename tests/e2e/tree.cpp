#include "tree.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <sstream>

namespace fhtest {

Channel::Channel(const std::string &stem) : path_(temp_path(stem))
{
	REQUIRE(mkfifo(path_.c_str(), 0600) == 0);
	fd_ = open(path_.c_str(), O_RDWR);
	REQUIRE(fd_ >= 0);
}

Channel::~Channel()
{
	close(fd_);
	unlink(path_.c_str());
}

void Channel::send(const std::string &line)
{
	std::string text = line + "\n";
	REQUIRE(write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

std::string Channel::next_line()
{
	auto line = read_line(fd_, kGuardMs);
	REQUIRE(line);
	return *line;
}

TreeGuard::~TreeGuard()
{
	if (master_ <= 0)
		return;
	kill(-master_, SIGKILL);
	kill(master_, SIGKILL); // before it made its group
	if (ours_)
		waitpid(master_, nullptr, 0);
}

Removed::~Removed()
{
	for (const auto &p : paths)
		unlink(p.c_str());
}

std::vector<TreeIncident> incidents_in(const std::string &output)
{
	static const std::regex headline_re(
		R"(^fh-bpf: pid (\d+) \((.*)\), parent pid (\d+), thread (\d+) \((.*?)\): (.*)$)");
	std::vector<TreeIncident> out;
	bool body = false; // the last incident has lines of its own text
	std::istringstream in(output);
	for (std::string line; std::getline(in, line);) {
		std::smatch m;
		if (std::regex_match(line, m, headline_re)) {
			TreeIncident inc;
			inc.headline = true;
			inc.pid = std::stoi(m[1]);
			inc.comm = m[2];
			inc.ppid = std::stoi(m[3]);
			inc.tid = std::stoi(m[4]);
			inc.thread_name = m[5];
			inc.what = m[6];
			out.push_back(inc);
			body = false;
			continue;
		}
		bool note = line.rfind("fh-bpf: ", 0) == 0;
		if (out.empty() || (line.rfind("Fatal ", 0) == 0 && body)) {
			out.emplace_back();
			body = false;
		}
		out.back().text += line + "\n";
		body |= !note;
	}
	return out;
}

long json_ppid(const nlohmann::json &j)
{
	if (j.contains("ppid") && j["ppid"].is_number())
		return j["ppid"].get<long>();
	if (j.contains("process") && j["process"].is_object() && j["process"].contains("ppid") &&
	    j["process"]["ppid"].is_number())
		return j["process"]["ppid"].get<long>();
	return -1;
}

std::string events_printed(int n)
{
	return ", " + std::to_string(n) + (n == 1 ? " event" : " events") + " printed";
}

std::string comm_of(pid_t pid)
{
	std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
	if (!c.empty() && c.back() == '\n')
		c.pop_back();
	return c;
}

std::vector<PythonBuild> tree_pythons()
{
	std::vector<PythonBuild> out;
	const PythonBuild *newest = nullptr;
	for (const auto &py : python_interpreters())
		if (py.path.rfind("/root/.pyenv/", 0) == 0 && (!newest || py.minor > newest->minor))
			newest = &py;
	REQUIRE(newest != nullptr);
	out.push_back(*newest);
	for (const auto &py : python_interpreters())
		if (py.path == "/usr/bin/python3.11")
			out.push_back(py);
	REQUIRE(out.size() == 2);
	return out;
}

std::string target_script(const std::string &name)
{
	return source_dir() + "/tests/targets/" + name;
}

std::vector<LiveBlock> live_blocks_in(const std::string &output)
{
	static const std::regex headline_re(
		R"(^fh-bpf: pid (\d+) \((.*?)\)(?:, parent pid (\d+))?: (timeout|dump on demand), (\d+) threads?$)");
	std::vector<LiveBlock> out;
	std::istringstream in(output);
	for (std::string line; std::getline(in, line);) {
		std::smatch m;
		if (std::regex_match(line, m, headline_re)) {
			LiveBlock b;
			b.headline = true;
			b.pid = std::stoi(m[1]);
			b.comm = m[2];
			b.ppid = m[3].matched ? std::stoi(m[3]) : 0;
			b.what = m[4];
			b.threads = std::stoi(m[5]);
			out.push_back(b);
			continue;
		}
		if (out.empty())
			out.emplace_back();
		out.back().text += line + "\n";
	}
	return out;
}

} // namespace fhtest
