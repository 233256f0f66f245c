#include "util/error.h"

#include <cstring>

namespace fh {

Error::Error(const std::string &msg, int err, int status)
	: std::runtime_error(msg), err_(err), status_(status)
{
}

Error sys_error(const std::string &what, int err)
{
	return Error(what + ": " + std::strerror(err), err);
}

} // namespace fh
