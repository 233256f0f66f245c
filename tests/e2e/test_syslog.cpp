// --syslog through a real relay: fh-bpf writes RFC 5424 records to the
// local socket of an rsyslogd (the host's syslog daemon, started by the
// test on a socket of its own), which forwards them over TCP on loopback to
// a second rsyslogd, the central collector, which writes them to a file.
// Every incident must arrive there intact: its parts put back together
// equal what fh-bpf printed.
#include <catch2/catch.hpp>

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace fhtest;

namespace {

uint16_t free_port()
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	struct sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(bind(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)) == 0);
	socklen_t len = sizeof(a);
	REQUIRE(getsockname(fd, reinterpret_cast<struct sockaddr *>(&a), &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

bool accepts(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	bool ok = connect(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)) == 0;
	close(fd);
	return ok;
}

// Poll a condition every millisecond, up to the guard: what the daemons do
// is asynchronous, and they say nothing when they are done.
template <typename F> bool eventually(F f)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kGuardMs);
	while (std::chrono::steady_clock::now() < end) {
		if (f())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	return false;
}

class Rsyslogd {
public:
	Rsyslogd(const std::string &dir, const std::string &config) : dir_(dir)
	{
		REQUIRE((mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST));
		std::ofstream(dir + "/rsyslog.conf") << config;
		SpawnOptions o;
		o.stdout_path = dir + "/stdout";
		o.stderr_path = dir + "/stderr";
		pid_ = spawn({"/usr/sbin/rsyslogd", "-n", "-f", dir + "/rsyslog.conf", "-i",
			      dir + "/pid"},
			     o);
	}
	~Rsyslogd()
	{
		kill(pid_, SIGTERM);
		wait_exit(pid_, kGuardMs);
	}
	std::string log() const { return read_file(dir_ + "/stderr") + read_file(dir_ + "/stdout"); }

private:
	std::string dir_;
	pid_t pid_ = -1;
};

struct Record {
	std::map<std::string, std::string> sd;
	std::string msg;
};

// The collector's lines (RSYSLOG_SyslogProtocol23Format, control characters
// escaped as #ooo by rsyslog on receipt) back into records.
std::vector<Record> parse_collected(const std::string &text)
{
	std::vector<Record> out;
	std::istringstream in(text);
	std::string line;
	static const std::regex head(R"(^<\d+>1 \S+ \S+ fh-bpf \d+ (\S+) \[fh@32473((?: [a-z_]+="(?:[^"\\]|\\.)*")*)\] ?)");
	static const std::regex param(R"re( ([a-z_]+)="((?:[^"\\]|\\.)*)")re");
	while (std::getline(in, line)) {
		std::smatch m;
		if (!std::regex_search(line, m, head))
			continue;
		Record r;
		std::string params = m[2];
		for (std::sregex_iterator it(params.begin(), params.end(), param), end; it != end;
		     ++it) {
			std::string v = (*it)[2];
			std::string unescaped;
			for (size_t i = 0; i < v.size(); i++)
				unescaped += v[i] == '\\' && i + 1 < v.size() ? v[++i] : v[i];
			r.sd[(*it)[1]] = unescaped;
		}
		std::string msg = line.substr(static_cast<size_t>(m.length(0)));
		for (size_t i = 0; i < msg.size(); i++) {
			if (msg[i] == '#' && i + 3 < msg.size() &&
			    std::isdigit(static_cast<unsigned char>(msg[i + 1])) &&
			    std::isdigit(static_cast<unsigned char>(msg[i + 2])) &&
			    std::isdigit(static_cast<unsigned char>(msg[i + 3]))) {
				r.msg += static_cast<char>(std::stoi(msg.substr(i + 1, 3), nullptr, 8));
				i += 3;
			} else {
				r.msg += msg[i];
			}
		}
		out.push_back(std::move(r));
	}
	return out;
}

} // namespace

TEST_CASE("--syslog: every incident reaches a central rsyslogd through a relay, intact",
	  "[e2e][syslog]")
{
	std::string base = temp_path("syslog");
	REQUIRE(mkdir(base.c_str(), 0700) == 0);
	uint16_t port = free_port();
	std::string collected = base + "/collector/collected.log";
	Rsyslogd collector(base + "/collector",
			   "global(workDirectory=\"" + base + "/collector\" maxMessageSize=\"64k\")\n"
			   "module(load=\"imtcp\")\n"
			   "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" +
				   std::to_string(port) +
				   "\")\n"
				   "action(type=\"omfile\" file=\"" +
				   collected + "\" template=\"RSYSLOG_SyslogProtocol23Format\")\n");
	std::string sock = base + "/relay/log.sock";
	Rsyslogd relay(base + "/relay",
		       "global(workDirectory=\"" + base + "/relay\" maxMessageSize=\"64k\")\n"
		       "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
		       "input(type=\"imuxsock\" Socket=\"" +
			       sock +
			       "\" UseSpecialParser=\"off\" ParseHostname=\"on\")\n"
			       "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"" +
			       std::to_string(port) +
			       "\" protocol=\"tcp\" template=\"RSYSLOG_SyslogProtocol23Format\")\n");
	INFO("collector: " << collector.log() << "\nrelay: " << relay.log());
	struct stat st;
	REQUIRE(eventually([&] { return accepts(port); }));
	REQUIRE(eventually([&] { return stat(sock.c_str(), &st) == 0; }));

	// Records of 2 KiB at most: a traceback takes several parts.
	Watcher agent(0, {"-a", "--comm", "crash", "--syslog-socket", sock, "--syslog-max-size", "2K"});
	std::vector<pid_t> pids;
	for (int i = 0; i < 3; i++) {
		SpawnOptions o;
		o.stdout_path = "/dev/null";
		pids.push_back(spawn({crash_path(), "--auto", "--threads", "4", "segv"}, o));
		REQUIRE(wait_exit(pids.back(), kGuardMs));
	}
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	REQUIRE(agent.wait() == 0);
	auto printed = split_dumps(agent.output(), "fh-bpf: pid ");
	REQUIRE(printed.size() == pids.size());

	// Every part of every incident, then nothing else to wait for.
	std::map<std::string, std::map<int, std::string>> parts;
	std::map<std::string, Record> first;
	auto complete = [&] {
		parts.clear();
		first.clear();
		for (auto &r : parse_collected(read_file(collected))) {
			std::string id = r.sd["incident"];
			int part = r.sd.count("part") ? std::stoi(r.sd["part"]) : 1;
			int of = r.sd.count("parts") ? std::stoi(r.sd["parts"]) : 1;
			parts[id][part] = r.msg;
			first.emplace(id, r);
			if (static_cast<int>(parts[id].size()) > of)
				return false;
		}
		if (parts.size() != pids.size())
			return false;
		for (auto &[id, p] : parts) {
			const Record &r = first[id];
			int of = r.sd.count("parts") ? std::stoi(r.sd.at("parts")) : 1;
			if (static_cast<int>(p.size()) != of)
				return false;
		}
		return true;
	};
	INFO("collected:\n" << read_file(collected));
	REQUIRE(eventually(complete));
	for (size_t i = 0; i < pids.size(); i++) {
		std::string want = printed[i];
		const Record *rec = nullptr;
		std::string whole;
		for (auto &[id, p] : parts) {
			if (first[id].sd["pid"] != std::to_string(pids[i]))
				continue;
			rec = &first[id];
			for (auto &[n, text] : p)
				whole += text;
		}
		REQUIRE(rec != nullptr);
		CHECK(rec->sd.at("signal") == "SIGSEGV");
		CHECK(rec->sd.at("comm") == "crash");
		CHECK(rec->sd.at("trigger") == "fatal_signal");
		CHECK(std::stoi(rec->sd.at("parts")) > 1);
		// A record's MSG has no final newline (syslog daemons drop it).
		CHECK(whole + "\n" == want);
	}
}
