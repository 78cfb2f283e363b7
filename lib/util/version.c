#include <libthinp/version.h>

const char *thinp_version(void)
{
	return THINP_VERSION_STRING;
}

int thinp_version_number(void)
{
	return THINP_VERSION_NUMBER;
}
