/* A logger and formatter that never allocate: the allocator may not call
 * stdio, which allocates and takes locks. */
#include "config.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void put(char *buf, size_t size, size_t *pos, char c)
{
	if (*pos + 1 < size)
		buf[*pos] = c;
	(*pos)++;
}

static void put_uint(char *buf, size_t size, size_t *pos, unsigned long long v,
		     unsigned base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		put(buf, size, pos, tmp[--n]);
}

size_t mt_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t pos = 0;

	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(buf, size, &pos, *f);
			continue;
		}
		int lng = 0, prec = -1;
		bool z = false;
		f++;
		if (f[0] == '.' && f[1] == '*') {
			prec = va_arg(ap, int);
			f += 2;
		}
		while (*f == 'l') {
			lng++;
			f++;
		}
		if (*f == 'z') {
			z = true;
			f++;
		}
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			for (int i = 0; *s && (prec < 0 || i < prec); i++)
				put(buf, size, &pos, *s++);
			break;
		}
		case 'c':
			put(buf, size, &pos, (char)va_arg(ap, int));
			break;
		case 'd': {
			long long v = z ? (long long)va_arg(ap, ssize_t)
				: lng >= 2 ? va_arg(ap, long long)
				: lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
			unsigned long long u = (unsigned long long)v;
			if (v < 0) {
				put(buf, size, &pos, '-');
				u = 0ULL - u;
			}
			put_uint(buf, size, &pos, u, 10);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = z ? va_arg(ap, size_t)
				: lng >= 2 ? va_arg(ap, unsigned long long)
				: lng == 1 ? va_arg(ap, unsigned long)
				: va_arg(ap, unsigned);
			put_uint(buf, size, &pos, v, *f == 'x' ? 16 : 10);
			break;
		}
		case 'p':
			put(buf, size, &pos, '0');
			put(buf, size, &pos, 'x');
			put_uint(buf, size, &pos,
				 (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			put(buf, size, &pos, '%');
			break;
		default: /* unknown conversion: print it as is */
			put(buf, size, &pos, '%');
			if (!*f)
				goto out;
			put(buf, size, &pos, *f);
		}
	}
out:
	if (size)
		buf[pos < size ? pos : size - 1] = '\0';
	return pos < size ? pos : (size ? size - 1 : 0);
}

size_t mt_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = mt_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void mt_log(const char *fmt, ...)
{
	char line[512];
	int saved = errno;
	size_t n = mt_fmt(line, sizeof(line), "mtalloc: ");
	va_list ap;

	va_start(ap, fmt);
	n += mt_vfmt(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	errno = saved;
}

void mt_assert_fail(const char *what, const char *file, int line)
{
	mt_log("internal check failed: %s (%s:%d)", what, file, line);
	abort();
}
