#include "python_interpreters.h"

namespace fhtest {

const std::vector<PythonBuild> &python_interpreters()
{
	static const std::vector<PythonBuild> builds = [] {
		std::vector<PythonBuild> out;
		const char *pyenv = "/root/.pyenv/versions/";
		struct V {
			const char *version;
			int minor;
			const char *lib;
		};
		for (V v : {V{"3.6.15", 6, "libpython3.6m.so.1.0"}, V{"3.7.16", 7, "libpython3.7m.so.1.0"},
			    V{"3.8.18", 8, "libpython3.8.so.1.0"}, V{"3.9.18", 9, "libpython3.9.so.1.0"},
			    V{"3.10.13", 10, "libpython3.10.so.1.0"},
			    V{"3.11.7", 11, "libpython3.11.so.1.0"},
			    V{"3.12.1", 12, "libpython3.12.so.1.0"},
			    V{"3.13.0", 13, "libpython3.13.so.1.0"}}) {
			std::string dir = std::string(pyenv) + v.version;
			out.push_back({dir + "/bin/python3", v.minor, dir + "/lib/" + v.lib, v.version});
		}
		out.push_back({"/usr/bin/python3.11", 11, "", "3.11.2"});
		return out;
	}();
	return builds;
}

} // namespace fhtest
