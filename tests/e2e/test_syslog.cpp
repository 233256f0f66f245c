// --syslog through a real relay: fh-bpf writes RFC 5424 records to the
// local socket of an rsyslogd (the host's syslog daemon, started by the
// test on a socket of its own), which forwards them over TCP on loopback to
// a second rsyslogd, the central collector, which writes them to a file.
// Every incident must arrive there intact: its parts put back together
// equal what fh-bpf printed.  With --format json, on a socket the test
// reads itself: every part parses, and the README's rule, run as the
// README writes it, gives back the record fh-bpf printed.  With no daemon
// there: said at start.
#include <catch2/catch.hpp>

#include "harness.h"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
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

namespace {

// A syslog socket of the test's own: every datagram fh-bpf sends, as sent.
class TestSyslogSocket {
public:
	explicit TestSyslogSocket(const std::string &path) : path_(path)
	{
		fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		REQUIRE(fd_ >= 0);
		struct sockaddr_un a = {};
		a.sun_family = AF_UNIX;
		REQUIRE(path.size() < sizeof(a.sun_path));
		std::memcpy(a.sun_path, path.c_str(), path.size());
		REQUIRE(bind(fd_, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)) == 0);
		reader_ = std::thread([this] { read_all(); });
	}
	~TestSyslogSocket()
	{
		take();
		close(fd_);
		unlink(path_.c_str());
	}
	// Every datagram, once the sender has exited (a datagram sent is
	// queued here: what remains is read, then the reader ends).
	std::vector<std::string> take()
	{
		if (reader_.joinable()) {
			stop_ = true;
			reader_.join();
		}
		return got_;
	}

private:
	void read_all()
	{
		std::vector<char> buf(1 << 17);
		for (;;) {
			// The timeout only lets the reader see stop_.
			struct pollfd p = {fd_, POLLIN, 0};
			if (poll(&p, 1, 20) > 0) {
				ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
				if (n >= 0)
					got_.emplace_back(buf.data(), static_cast<size_t>(n));
			} else if (stop_) {
				return;
			}
		}
	}
	std::string path_;
	int fd_ = -1;
	std::thread reader_;
	std::atomic<bool> stop_{false};
	std::vector<std::string> got_;
};

// One RFC 5424 datagram: its structured data and message, as sent.
Record parse_datagram(const std::string &d)
{
	Record r;
	size_t at = d.find(" [fh@32473");
	REQUIRE(at != std::string::npos);
	at += 10;
	while (at < d.size() && d[at] == ' ') {
		size_t eq = d.find("=\"", at);
		REQUIRE(eq != std::string::npos);
		std::string key = d.substr(at + 1, eq - at - 1), value;
		for (at = eq + 2; at < d.size() && d[at] != '"'; at++)
			value += d[at] == '\\' ? d[++at] : d[at];
		r.sd[key] = value;
		at++;
	}
	REQUIRE(d.compare(at, 2, "] ") == 0);
	r.msg = d.substr(at + 2);
	return r;
}

// The Python code block of the README that defines `def rebuild(parts)`.
std::string readme_rebuild()
{
	std::string readme = read_file(source_dir() + "/README.md");
	size_t def = readme.find("def rebuild(parts):");
	REQUIRE(def != std::string::npos);
	size_t end = readme.find("```", def);
	REQUIRE(end != std::string::npos);
	return readme.substr(def, end - def);
}

std::string linked_crasher(const std::string &dir, const std::string &name)
{
	char crash[PATH_MAX];
	REQUIRE(realpath(crash_path().c_str(), crash));
	std::string link = dir + "/" + name;
	REQUIRE(symlink(crash, link.c_str()) == 0);
	return link;
}

} // namespace

TEST_CASE("--syslog --format json: every part of a 300-thread incident parses, and the "
	  "README's rule rebuilds the record exactly",
	  "[e2e][syslog]")
{
	using ojson = nlohmann::ordered_json;
	std::string dir = temp_path("syslog-json");
	REQUIRE(mkdir(dir.c_str(), 0700) == 0);
	// The crasher under a name of its own: no other process is in scope.
	std::string crash = linked_crasher(dir, "crash-sysjson");
	TestSyslogSocket sock(dir + "/log.sock");
	Watcher agent(0, {"-a", "--comm", "crash-sysjson", "--format", "json", "--max-threads",
			  "300", "--syslog-socket", dir + "/log.sock"});
	pid_t pid = start_crasher("segv", 300, static_cast<uid_t>(-1), crash);
	auto st = wait_exit(pid, kGuardMs);
	REQUIRE(st);
	CHECK(WTERMSIG(*st) == SIGSEGV);
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	INFO(agent.diagnostics());
	REQUIRE(agent.wait() == 0);
	auto datagrams = sock.take();

	// The record as fh-bpf wrote it to its output.
	std::string out = agent.output();
	REQUIRE(std::count(out.begin(), out.end(), '\n') == 1);
	ojson record = ojson::parse(out);
	REQUIRE(record["pid"] == pid);
	REQUIRE(record["threads"].size() == 300);
	REQUIRE(out.size() > 8192 * 20);

	// Each datagram: at most 8K, its message one JSON object that names
	// the incident and the part as its structured data does.
	std::string parts_file = dir + "/parts.jsonl";
	std::ofstream lines(parts_file);
	std::set<int> seen;
	for (const auto &d : datagrams) {
		CHECK(d.size() <= 8192);
		Record r = parse_datagram(d);
		CHECK(r.sd["pid"] == std::to_string(pid));
		ojson p;
		INFO(r.msg.substr(0, 300));
		REQUIRE_NOTHROW(p = ojson::parse(r.msg));
		CHECK(p["incident"] == r.sd["incident"]);
		CHECK(std::to_string(p["part"].get<int>()) == r.sd["part"]);
		CHECK(std::to_string(p["parts"].get<int>()) == r.sd["parts"]);
		CHECK(p["parts"] == datagrams.size());
		seen.insert(p["part"].get<int>());
		if (p["part"] == 1) {
			// The record, but for its threads and text.
			ojson head = record;
			head["threads"] = ojson::array();
			head["text"] = "";
			CHECK(p["record"] == head);
		}
		lines << r.msg << "\n";
	}
	lines.close();
	CHECK(datagrams.size() > 20);
	CHECK(seen.size() == datagrams.size());
	// The parts in the order they came, rebuilt by the README's code.
	int status = -1;
	std::string rebuilt = run_capture(
		{"/usr/bin/python3", "-c",
		 readme_rebuild() +
			 "\nimport json, sys\n"
			 "parts = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]\n"
			 "print(json.dumps(rebuild(parts), ensure_ascii=False))\n",
		 parts_file},
		&status);
	REQUIRE(status == 0);
	CHECK(ojson::parse(rebuilt) == record);
	remove_dir(dir);
}

TEST_CASE("--syslog with no daemon on its socket: said at start in one line, each record counted",
	  "[e2e][syslog]")
{
	std::string dir = temp_path("syslog-none");
	REQUIRE(mkdir(dir.c_str(), 0700) == 0);
	std::string path, reason;
	SECTION("no socket there")
	{
		path = dir + "/missing.sock";
		reason = "No such file or directory";
	}
	SECTION("a socket nobody reads any more")
	{
		path = dir + "/gone.sock";
		reason = "Connection refused";
		int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct sockaddr_un a = {};
		a.sun_family = AF_UNIX;
		std::memcpy(a.sun_path, path.c_str(), path.size());
		REQUIRE(bind(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)) == 0);
		close(fd);
	}
	FhRun r = run_fh({"--syslog-socket", path, "--", crash_path(), "--auto", "segv"});
	INFO(r.err);
	CHECK(r.status == 128 + SIGSEGV);
	std::string said = "fh-bpf: --syslog: no syslog daemon takes records at " + path + " (" +
			   reason + "): each record is counted as lost until one does\n";
	size_t at = r.err.find(said);
	REQUIRE(at != std::string::npos);
	CHECK(r.err.find(said, at + 1) == std::string::npos);
	CHECK(at < r.err.find("fh-bpf: pid "));
	CHECK(contains(r.err, "1 syslog records (the daemon did not take them)"));
	remove_dir(dir);
}
