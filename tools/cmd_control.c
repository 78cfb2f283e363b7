/*
 * thinp control: send one command to a running server's control socket (the
 * nbdkit plugin's control=SOCKET) and print its one-line reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "thinp.h"

#define REPLY_MAX 8192

/* The words, space-separated, newline-terminated; NULL if too long. */
static char *join_words(int n, char **w)
{
	size_t len = 1;
	char *line;

	for (int i = 0; i < n; i++)
		len += strlen(w[i]) + 1;
	if (len > 1024 || !(line = malloc(len)))
		return NULL;
	line[0] = '\0';
	for (int i = 0; i < n; i++) {
		strcat(line, w[i]);
		strcat(line, i + 1 < n ? " " : "\n");
	}
	return line;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Send line over the socket at path; the reply (without newline) into buf. */
static int exchange(const char *path, const char *line, char *buf, size_t size)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return err("%s: path too long", path);
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    write_all(fd, line, strlen(line))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return err("%s: %s", path, strerror(e));
	}
	while (got < size - 1) {
		ssize_t k = read(fd, buf + got, size - 1 - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	buf[got] = '\0';
	if (!got || buf[got - 1] != '\n')
		return err("%s: no reply", path);
	buf[got - 1] = '\0';
	return EXIT_OK;
}

int cmd_control(int argc, char **argv)
{
	char *line, *reply;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return print_usage();
	if (argc < 3)
		return usage_err("expected SOCKET COMMAND");
	line = join_words(argc - 2, argv + 2);
	reply = malloc(REPLY_MAX);
	if (!line || !reply) {
		r = err("command too long, or out of memory");
	} else if ((r = exchange(argv[1], line, reply, REPLY_MAX)) == EXIT_OK) {
		printf("%s\n", reply);
		r = strncmp(reply, "ok", 2) ? EXIT_FAIL : EXIT_OK;
	}
	free(line);
	free(reply);
	return r;
}
