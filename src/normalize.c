/*
 * normalize.c: the keys under which crm.convert_lead() recognises an existing
 * account.
 *
 * crm.company_match_key(name): two company names are the same account when
 * their keys are equal.  The key is the name in lower case, with dots and
 * apostrophes dropped ("L.L.C." -> "llc"), every other punctuation mark and
 * white space treated as a word break, trailing legal-form words (Inc, LLC,
 * Ltd, GmbH, ...) and a leading "the" removed, and the remaining words joined
 * without spaces.  So "ACME, Inc.", "Acme Inc" and "acme" share the key
 * "acme", and "Acme-Widgets" matches "AcmeWidgets".
 *
 * crm.web_domain(url): the host of a web address in lower case without
 * scheme, user info, port, path and leading "www.", so "https://www.Acme.com/x"
 * and "acme.com" share "acme.com".
 *
 * crm.phone_key(phone): the digits that identify a phone number whatever
 * its punctuation and however its country is written: the digits only, a
 * leading international "00" dropped, and of a longer number the last nine
 * (so "+1 (555) 014-2000", "001 555 0142000" and "555.014.2000" share
 * "550142000", and "+49 30 1234567" and "030 1234567" share "301234567").
 * An extension ("x12", "ext. 12", "#12", ";ext=12": whatever follows the
 * first letter, # or ; after a digit) is not part of the number.  Fewer
 * than seven digits identify nothing: NULL.
 *
 * All three are IMMUTABLE and back expression indexes.
 *
 * crm_company_domain(host): the host, unless it is shared by many companies
 * -- a public mail provider (gmail.com, outlook.com, ...) or a platform that
 * hosts their pages (facebook.com, linkedin.com, wixsite.com, ...) -- in
 * which case it says nothing about the company and is NULL.  Duplicate
 * detection only matches on company domains.
 */
#include "crm.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

/* Legal-form words ignored at the end of a company name (already lower case). */
static const char *const legal_forms[] = {
	"inc", "incorporated", "corp", "corporation", "co", "company", "cos",
	"llc", "llp", "lp", "ltd", "limited", "plc", "pllc",
	"gmbh", "mbh", "ag", "kg", "ug", "ev", "ohg", "kgaa",
	"sa", "sas", "sarl", "srl", "spa", "sl", "sc",
	"bv", "nv", "ab", "as", "asa", "oy", "oyj", "aps",
	"pty", "pte", "kk", "sro", "zoo", "doo", "ooo",
	"holding", "holdings", "group",
	NULL
};

static bool
is_legal_form(const char *word, int len)
{
	for (int i = 0; legal_forms[i] != NULL; i++)
	{
		if ((int) strlen(legal_forms[i]) == len &&
			memcmp(legal_forms[i], word, len) == 0)
			return true;
	}
	return false;
}

/*
 * crm_company_key -- the match key of a company name (see the file header);
 * NULL when the name has no letters or digits at all.
 */
char *
crm_company_key(const char *company)
{
	char	   *lower = str_tolower(company, strlen(company), DEFAULT_COLLATION_OID);
	int			len = strlen(lower);
	char	   *buf = palloc(len + 1);	/* word characters, words back to back */
	int		   *starts = palloc((len + 1) * sizeof(int));	/* word i is */
	int		   *ends = palloc((len + 1) * sizeof(int));	/* buf[starts[i]..ends[i]) */
	int			nwords = 0;
	int			blen = 0;
	bool		in_word = false;
	int			first;
	int			last;
	StringInfoData key;

	for (int i = 0; i < len;)
	{
		unsigned char c = (unsigned char) lower[i];
		int			clen = pg_mblen(lower + i);

		if (c >= 0x80 || isalnum(c))
		{
			/* a word character; non-ASCII characters count as letters */
			if (!in_word)
			{
				starts[nwords++] = blen;
				in_word = true;
			}
			memcpy(buf + blen, lower + i, clen);
			blen += clen;
			ends[nwords - 1] = blen;
		}
		else if (c != '.' && c != '\'')
			in_word = false;	/* a word break; dots and apostrophes are dropped */
		i += clen;
	}
	if (nwords == 0)
		return NULL;

	first = 0;
	last = nwords - 1;
	/* drop trailing legal forms, but never the last remaining word */
	while (last > first && is_legal_form(buf + starts[last], ends[last] - starts[last]))
		last--;
	/* drop a leading "the" */
	if (last > first && ends[first] - starts[first] == 3 &&
		memcmp(buf + starts[first], "the", 3) == 0)
		first++;

	initStringInfo(&key);
	appendBinaryStringInfo(&key, buf + starts[first], ends[last] - starts[first]);
	return key.data;
}

/*
 * crm_domain_of -- the host name of a web address (see the file header);
 * NULL when there is none.
 */
char *
crm_domain_of(const char *url)
{
	const char *p = url;
	const char *end;
	const char *at;
	const char *colon;
	char	   *host;
	int			hlen;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;

	/* scheme: letters, digits, + - . followed by :// */
	{
		const char *s = strstr(p, "://");

		if (s != NULL && strcspn(p, "/?#") > (size_t) (s - p))
			p = s + 3;
		else if (p[0] == '/' && p[1] == '/')
			p += 2;
	}

	end = p + strcspn(p, "/?# \t\r\n");
	/* user info */
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL)
		p = at + 1;
	/* port */
	colon = memchr(p, ':', end - p);
	if (colon != NULL)
		end = colon;

	hlen = end - p;
	while (hlen > 0 && p[hlen - 1] == '.')
		hlen--;
	if (hlen >= 4 && pg_strncasecmp(p, "www.", 4) == 0)
	{
		p += 4;
		hlen -= 4;
	}
	if (hlen <= 0 || memchr(p, '.', hlen) == NULL)
		return NULL;			/* no host, or not a dotted domain name */

	host = str_tolower(p, hlen, DEFAULT_COLLATION_OID);
	return host;
}

/* Hosts shared by many companies: mail providers and page-hosting platforms. */
static const char *const shared_domains[] = {
	"gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com",
	"hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com",
	"icloud.com", "me.com", "mac.com", "aol.com", "gmx.com", "gmx.de", "gmx.net",
	"web.de", "t-online.de", "mail.com", "mail.ru", "yandex.ru", "yandex.com",
	"proton.me", "protonmail.com", "zoho.com", "qq.com", "163.com", "126.com",
	"naver.com", "orange.fr", "free.fr", "laposte.net", "libero.it", "fastmail.com",
	"facebook.com", "fb.com", "instagram.com", "linkedin.com", "twitter.com", "x.com",
	"youtube.com", "tiktok.com", "pinterest.com", "github.com", "gitlab.com", "bitbucket.org",
	"medium.com", "substack.com", "wordpress.com", "blogspot.com", "tumblr.com",
	"wixsite.com", "wix.com", "squarespace.com", "weebly.com", "webflow.io", "myshopify.com",
	"shopify.com", "etsy.com", "amazon.com", "ebay.com", "yelp.com", "google.com",
	"sites.google.com", "business.site", "linktr.ee", "t.me", "wa.me", "notion.site",
	NULL
};

/* crm_company_domain -- the host, or NULL when many companies share it */
char *
crm_company_domain(char *host)
{
	if (host == NULL)
		return NULL;
	for (int i = 0; shared_domains[i] != NULL; i++)
		if (strcmp(host, shared_domains[i]) == 0)
			return NULL;
	return host;
}

/*
 * crm_email_company_domain -- the company domain an e-mail address reveals;
 * NULL for shared hosts and malformed addresses.
 */
char *
crm_email_company_domain(const char *email)
{
	const char *at = strrchr(email, '@');

	return at == NULL ? NULL : crm_company_domain(crm_domain_of(at + 1));
}

/* crm_company_match_key -- SQL crm.company_match_key(text) */
PG_FUNCTION_INFO_V1(crm_company_match_key);
Datum
crm_company_match_key(PG_FUNCTION_ARGS)
{
	char	   *key = crm_company_key(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (key == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(key));
}

/* crm_web_domain -- SQL crm.web_domain(text) */
PG_FUNCTION_INFO_V1(crm_web_domain);
Datum
crm_web_domain(PG_FUNCTION_ARGS)
{
	char	   *host = crm_domain_of(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (host == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(host));
}

/* crm_phone_digits -- the key of a phone number (see the file header); NULL when none */
char *
crm_phone_digits(const char *phone)
{
	char	   *digits = palloc(strlen(phone) + 1);
	int			n = 0;
	char	   *start;

	for (const char *p = phone; *p; p++)
	{
		if (*p >= '0' && *p <= '9')
			digits[n++] = *p;
		else if (n > 0 && (*p == '#' || *p == ';' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			break;				/* an extension: "x12", "ext. 12", "#12", ";ext=12" */
	}
	digits[n] = '\0';
	start = digits;
	if (n >= 2 && start[0] == '0' && start[1] == '0')
	{
		start += 2;
		n -= 2;
	}
	if (n < 7)
		return NULL;
	if (n > 9)
		start += n - 9;
	return start;
}

/* crm_phone_key -- SQL crm.phone_key(text) */
PG_FUNCTION_INFO_V1(crm_phone_key);
Datum
crm_phone_key(PG_FUNCTION_ARGS)
{
	char	   *key = crm_phone_digits(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (key == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(key));
}
