// test_headers_cxx: the public headers compile as C++17 with -Wall -Wextra
// -Werror -pedantic, link against libwitch, and agree with the library.
#include <witch/witch.h>

#include <cstdio>
#include <cstring>

int
main()
{
	witch_server_config_t *cfg = nullptr;
	witch_server_t *srv = nullptr;

	if (std::strcmp(witch_version(), WITCH_VERSION_STRING) != 0 ||
	    witch_version_number() != WITCH_VERSION_NUMBER) {
		std::fprintf(stderr, "header/library version mismatch\n");
		return 1;
	}
	if (witch_server_config_new(&cfg) != 0 ||
	    witch_server_config_set_port(cfg, 70000) != WITCH_EINVAL ||
	    witch_server_new(&srv, cfg) != 0)
		return 1;
	witch_server_config_free(cfg);
	witch_server_free(srv);
	if (std::strcmp(witch_err_name(WITCH_EPARSE), "parse_error") != 0)
		return 1;
	return 0;
}
