/*
 * EdgeFleet's Mosquitto auth plugin (plugin API v5, Mosquitto 2.0.0 and later).
 *
 * Why: the dynamic-security plugin rewrites its whole JSON file on every change (96% of the broker's
 * CPU at a few thousand devices) and cannot bind an enrollee's client id. This plugin keeps every
 * login in a hash table fed by the control plane over `$CONTROL/edgefleet-auth/v1` (O(1) per change,
 * appended to a journal, compacted when it doubles), and applies EdgeFleet's rules itself:
 *
 *   control plane  username = plugin_opt_admin_username, client id "edgefleet-*", anything under edgefleet/v1/
 *   enrollee       username "enroll-<tokenId>", client id "enroll-<deviceId>": publish only
 *                  edgefleet/v1/enroll/<deviceId>/req, subscribe/receive only .../res, never retained
 *   device         username = client id = device id: publish its own birth|status|heartbeat|report|xfer/req
 *                  (retained only on status), subscribe/receive its own cmd and xfer/data, and the shared
 *                  edgefleet/v1/transfers/<id>/data of transfers it was granted (checked at every delivery)
 *
 * Logins failing repeatedly are braked per client id, username and source address: past a free
 * allowance each key gets one attempt per slot, slots spaced by a doubling delay (capped); attempts
 * between slots are refused without checking. Counters are reported by the `stats` command.
 *
 * Commands (text, one per line, first line "req <correlation>"), answered on .../response:
 *   device <id> <hash> | undevice <id> | token <tokenId> <hash> | untoken <tokenId>
 *   xfer <transferId> <deviceId> | unxfer <transferId> | sync-begin <gen> | sync-end <gen> | stats
 * Hashes are the control plane's "sha256$<b64 salt>$<b64 sha256(salt || secret)>".
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define ROOT "edgefleet/v1/"
#define CONTROL_TOPIC "$CONTROL/edgefleet-auth/v1"
#define RESPONSE_TOPIC "$CONTROL/edgefleet-auth/v1/response"
#define MAX_ID 64

/* ---------- hash table of logins and grants ---------- */

typedef struct entry {
	struct entry *next;
	char *key;   /* "d:<id>", "t:<tokenId>", "x:<transferId>/<deviceId>" */
	char *hash;  /* NULL for transfer grants */
	long gen;
} entry;

static entry **table = NULL;
static size_t table_size = 0, table_count = 0;
static long current_gen = 0;

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	while(*s){ h ^= (unsigned char)*s++; h *= 1099511628211ULL; }
	return h;
}

static entry *find(const char *key)
{
	if(!table) return NULL;
	for(entry *e = table[fnv(key) % table_size]; e; e = e->next){
		if(!strcmp(e->key, key)) return e;
	}
	return NULL;
}

static void grow(void)
{
	size_t n = table_size ? table_size * 2 : 1024;
	entry **t = calloc(n, sizeof(entry *));
	if(!t) return;
	for(size_t i = 0; i < table_size; i++){
		entry *e = table[i];
		while(e){ entry *next = e->next; size_t b = fnv(e->key) % n; e->next = t[b]; t[b] = e; e = next; }
	}
	free(table);
	table = t;
	table_size = n;
}

static int put(const char *key, const char *hash)
{
	entry *e = find(key);
	if(e){
		char *h = hash ? strdup(hash) : NULL;
		if(hash && !h) return -1;
		free(e->hash);
		e->hash = h;
		e->gen = current_gen;
		return 0;
	}
	if(table_count + 1 > table_size) grow();
	if(!table) return -1;
	e = calloc(1, sizeof(entry));
	if(!e) return -1;
	e->key = strdup(key);
	e->hash = hash ? strdup(hash) : NULL;
	if(!e->key || (hash && !e->hash)){ free(e->key); free(e->hash); free(e); return -1; }
	e->gen = current_gen;
	size_t b = fnv(key) % table_size;
	e->next = table[b];
	table[b] = e;
	table_count++;
	return 0;
}

static void free_entry(entry *e){ free(e->key); free(e->hash); free(e); }

static void kick_for(const char *key)
{
	/* a removed login is disconnected at once; a removed transfer grant needs no kick (checked per delivery) */
	if(!strncmp(key, "d:", 2)) mosquitto_kick_client_by_username(key + 2, false);
	else if(!strncmp(key, "t:", 2)){
		char user[MAX_ID + 16];
		snprintf(user, sizeof(user), "enroll-%s", key + 2);
		mosquitto_kick_client_by_username(user, false);
	}
}

/* Removes entries: the exact key, or (prefix) every key starting with it, or (stale) every entry of another generation. */
static void remove_where(const char *key, int prefix, int stale)
{
	size_t klen = key ? strlen(key) : 0;
	for(size_t i = 0; i < table_size; i++){
		entry **pp = &table[i];
		while(*pp){
			entry *e = *pp;
			int match = stale ? e->gen != current_gen : prefix ? !strncmp(e->key, key, klen) : !strcmp(e->key, key);
			if(match){ *pp = e->next; kick_for(e->key); free_entry(e); table_count--; }
			else pp = &e->next;
		}
	}
}

static void remove_key(const char *key)
{
	if(!table) return;
	entry **pp = &table[fnv(key) % table_size];
	while(*pp){
		entry *e = *pp;
		if(!strcmp(e->key, key)){ *pp = e->next; kick_for(e->key); free_entry(e); table_count--; return; }
		pp = &e->next;
	}
}

/* ---------- rules ---------- */

/* shared/ids.ts's rule: [a-z0-9] first, then [a-z0-9_-] or a '.' followed by one of those; 1..64 characters */
static int plain(unsigned char c){ return islower(c) || isdigit(c) || c == '_' || c == '-'; }
static int valid_id(const char *s, size_t len)
{
	if(len < 1 || len > MAX_ID || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0]))) return 0;
	for(size_t i = 1; i < len; i++){
		unsigned char c = (unsigned char)s[i];
		if(c == '.'){ if(i + 1 >= len || !plain((unsigned char)s[i + 1])) return 0; }
		else if(!plain(c)) return 0;
	}
	return 1;
}

static int valid_token_id(const char *s)
{
	size_t len = strlen(s);
	if(len < 6 || len > 32) return 0;
	for(size_t i = 0; i < len; i++) if(!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]))) return 0;
	return 1;
}

static char *admin_username = NULL;
static char *admin_hash = NULL;
static char *state_path = NULL;

static int reserved(const char *id)
{
	static const char *names[] = {"edgefleet", "admin", "anonymous", "mosquitto", "root"};
	for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) if(!strcmp(id, names[i])) return 1;
	return !strncmp(id, "edgefleet-", 10) || !strncmp(id, "enroll-", 7) || (admin_username && !strcmp(id, admin_username));
}

static int device_id_ok(const char *id){ return valid_id(id, strlen(id)) && !reserved(id); }

static int b64(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
	if(inlen == 0 || inlen % 4 || inlen / 4 * 3 > outcap) return -1;
	int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if(n < 0) return -1;
	if(in[inlen - 1] == '=') n--;
	if(in[inlen - 2] == '=') n--;
	return n;
}

static int verify(const char *password, const char *stored)
{
	if(!password || !stored || strncmp(stored, "sha256$", 7)) return 0;
	const char *salt = stored + 7, *dollar = strchr(salt, '$');
	if(!dollar) return 0;
	unsigned char s[64], want[48], got[EVP_MAX_MD_SIZE];
	int slen = b64(salt, (size_t)(dollar - salt), s, sizeof(s));
	int wlen = b64(dollar + 1, strlen(dollar + 1), want, sizeof(want));
	if(slen < 0 || wlen != 32) return 0;
	unsigned int glen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if(!ctx) return 0;
	int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, s, (size_t)slen)
		&& EVP_DigestUpdate(ctx, password, strlen(password)) && EVP_DigestFinal_ex(ctx, got, &glen);
	EVP_MD_CTX_free(ctx);
	return ok && glen == 32 && CRYPTO_memcmp(got, want, 32) == 0;
}

/* ---------- brake ---------- */

#define BRAKE_SLOTS 4096
/* Same rule as control-plane/broker/auth-brake.ts, but refusing instead of holding (the broker has one thread):
 * leaky failure counts per key (client id, username, address); past the free allowance one attempt per slot,
 * slots spaced by a doubling delay up to a cap; attempts between slots are refused without a password check. */
typedef struct { char key[96]; double failures; double updated; double next_slot; } brake_entry;
static brake_entry brake[BRAKE_SLOTS];
static double free_per_login = 3, free_per_address = 30, leak_login = 60.0, leak_address = 1.0;
static double base_delay = 0.1, max_delay = 2.0;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static brake_entry *brake_slot(const char *kind, const char *value, double leak, int create, double t)
{
	char key[96];
	snprintf(key, sizeof(key), "%s:%s", kind, value ? value : "");
	brake_entry *b = &brake[fnv(key) % BRAKE_SLOTS];
	if(strcmp(b->key, key)){
		if(!create) return NULL;
		memset(b, 0, sizeof(*b)); /* bounded: a colliding key takes the slot over */
		snprintf(b->key, sizeof(b->key), "%s", key);
		b->updated = t;
		b->next_slot = t;
	}
	b->failures -= (t - b->updated) / leak;
	if(b->failures < 0) b->failures = 0;
	b->updated = t;
	return b;
}

static double brake_delay(double over)
{
	double d = base_delay;
	for(double i = 1; i < over && d < max_delay; i++) d *= 2;
	return d < max_delay ? d : max_delay;
}

/* 1 when the attempt may be checked now (and takes its slot), 0 when it is refused unchecked. */
static int brake_admit(const char *clientid, const char *username, const char *address)
{
	const char *kinds[3] = {"c", "u", "a"};
	const char *values[3] = {clientid, strcmp(username, clientid) ? username : NULL, address};
	double frees[3] = {free_per_login, free_per_login, free_per_address};
	double leaks[3] = {leak_login, leak_login, leak_address};
	double t = now_s();
	brake_entry *hit[3] = {0};
	for(int i = 0; i < 3; i++){
		if(!values[i]) continue;
		brake_entry *b = brake_slot(kinds[i], values[i], leaks[i], 0, t);
		if(!b || b->failures <= frees[i]) continue;
		if(t < b->next_slot) return 0;
		hit[i] = b;
	}
	for(int i = 0; i < 3; i++) if(hit[i]) hit[i]->next_slot = t + brake_delay(hit[i]->failures - frees[i]);
	return 1;
}

static void brake_failed(const char *clientid, const char *username, const char *address)
{
	const char *kinds[3] = {"c", "u", "a"};
	const char *values[3] = {clientid, strcmp(username, clientid) ? username : NULL, address};
	double leaks[3] = {leak_login, leak_login, leak_address};
	double t = now_s();
	for(int i = 0; i < 3; i++){
		if(!values[i]) continue;
		brake_entry *b = brake_slot(kinds[i], values[i], leaks[i], 1, t);
		b->failures += 1;
		if(b->next_slot < t) b->next_slot = t;
	}
}

static void brake_succeeded(const char *clientid, const char *username)
{
	double t = now_s();
	brake_entry *b = brake_slot("c", clientid, leak_login, 0, t);
	if(b) memset(b, 0, sizeof(*b));
	b = brake_slot("u", username, leak_login, 0, t);
	if(b) memset(b, 0, sizeof(*b));
}

/* ---------- counters ---------- */

static unsigned long long n_bad_credentials, n_client_id, n_reserved, n_malformed, n_braked, n_acl_denied, n_retain_denied;

/* ---------- journal ---------- */

static FILE *journal = NULL;
static size_t journal_lines = 0;

static void journal_open(void)
{
	if(!state_path) return;
	/* 0600: the journal holds salted hashes of every device's password */
	int fd = open(state_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	journal = fd >= 0 ? fdopen(fd, "a") : NULL;
	if(!journal) mosquitto_log_printf(MOSQ_LOG_ERR, "edgefleet-auth: cannot append to %s", state_path);
}

static void journal_write(const char *line)
{
	if(!journal) return;
	fputs(line, journal);
	fputc('\n', journal);
	journal_lines++;
}

static void compact(void)
{
	if(!state_path) return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if(!f){ if(fd >= 0) close(fd); return; }
	for(size_t i = 0; i < table_size; i++){
		for(entry *e = table[i]; e; e = e->next){
			if(e->key[0] == 'd') fprintf(f, "device %s %s\n", e->key + 2, e->hash);
			else if(e->key[0] == 't') fprintf(f, "token %s %s\n", e->key + 2, e->hash);
			else{
				const char *slash = strchr(e->key + 2, '/');
				if(slash) fprintf(f, "xfer %.*s %s\n", (int)(slash - e->key - 2), e->key + 2, slash + 1);
			}
		}
	}
	if(fclose(f) != 0 || rename(tmp, state_path) != 0){ remove(tmp); return; }
	if(journal) fclose(journal);
	journal_lines = table_count;
	journal_open();
}

/* ---------- commands ---------- */

/* Applies one command line; returns NULL or an error message. `replay`: from the journal (no journal write). */
static const char *apply(char *line, int replay, char *out, size_t outcap)
{
	char copy[1024];
	snprintf(copy, sizeof(copy), "%s", line);
	char *save = NULL;
	char *verb = strtok_r(line, " ", &save), *a = strtok_r(NULL, " ", &save), *b = strtok_r(NULL, " ", &save);
	if(!verb) return NULL;
	char key[2 * MAX_ID + 8];
	int mutates = 1;
	if(!strcmp(verb, "device") && a && b){
		if(!device_id_ok(a)) return "device id invalid or reserved";
		snprintf(key, sizeof(key), "d:%s", a);
		if(put(key, b)) return "out of memory";
	}else if(!strcmp(verb, "undevice") && a){
		if(!device_id_ok(a)) return "device id invalid or reserved";
		snprintf(key, sizeof(key), "d:%s", a);
		remove_key(key);
	}else if(!strcmp(verb, "token") && a && b){
		if(!valid_token_id(a)) return "token id invalid";
		snprintf(key, sizeof(key), "t:%s", a);
		if(put(key, b)) return "out of memory";
	}else if(!strcmp(verb, "untoken") && a){
		if(!valid_token_id(a)) return "token id invalid";
		snprintf(key, sizeof(key), "t:%s", a);
		remove_key(key);
	}else if(!strcmp(verb, "xfer") && a && b){
		if(!valid_id(a, strlen(a)) || !device_id_ok(b)) return "transfer or device id invalid";
		snprintf(key, sizeof(key), "x:%s/%s", a, b);
		if(put(key, NULL)) return "out of memory";
	}else if(!strcmp(verb, "unxfer") && a){
		if(!valid_id(a, strlen(a))) return "transfer id invalid";
		snprintf(key, sizeof(key), "x:%s/", a);
		remove_where(key, 1, 0);
	}else if(!strcmp(verb, "sync-begin") && a){
		current_gen = atol(a);
		mutates = 0;
	}else if(!strcmp(verb, "sync-end") && a){
		if(atol(a) != current_gen) return "sync generation changed";
		remove_where(NULL, 0, 1);
		compact();
		mutates = 0;
	}else if(!strcmp(verb, "stats")){
		snprintf(out, outcap, "stats bad_credentials=%llu client_id=%llu reserved=%llu malformed=%llu braked=%llu acl_denied=%llu retain_denied=%llu logins=%zu\n",
			n_bad_credentials, n_client_id, n_reserved, n_malformed, n_braked, n_acl_denied, n_retain_denied, table_count);
		mutates = 0;
	}else{
		return "unknown command";
	}
	if(mutates && !replay) journal_write(copy);
	return NULL;
}

static void load_journal(void)
{
	if(!state_path) return;
	FILE *f = fopen(state_path, "r");
	if(f){
		char line[1024], out[8];
		while(fgets(line, sizeof(line), f)){
			line[strcspn(line, "\r\n")] = 0;
			apply(line, 1, out, sizeof(out));
			journal_lines++;
		}
		fclose(f);
	}
	if(!table) grow();
	compact();
	journal_open();
}

static int on_control(int event, void *event_data, void *userdata)
{
	(void)event; (void)userdata;
	struct mosquitto_evt_control *ed = event_data;
	const char *user = mosquitto_client_username(ed->client);
	if(!user || !admin_username || strcmp(user, admin_username)) return MOSQ_ERR_ACL_DENIED;
	if(ed->payloadlen > 16 * 1024 * 1024) return MOSQ_ERR_INVAL;
	char *buf = malloc(ed->payloadlen + 1);
	if(!buf) return MOSQ_ERR_NOMEM;
	memcpy(buf, ed->payload, ed->payloadlen);
	buf[ed->payloadlen] = 0;
	char corr[80] = "-", stats[512] = "";
	size_t cap = 4096, len = 0;
	char *res = malloc(cap);
	if(!res){ free(buf); return MOSQ_ERR_NOMEM; }
	int lineno = 0, errors = 0;
	char *save = NULL;
	for(char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)){
		lineno++;
		if(lineno == 1 && !strncmp(line, "req ", 4)){ snprintf(corr, sizeof(corr), "%s", line + 4); continue; }
		const char *e = apply(line, 0, stats, sizeof(stats));
		if(e && errors < 1000){
			/* one "err <line> <why>" per refused line, so the control plane knows which command failed */
			char one[160];
			int n = snprintf(one, sizeof(one), "err %d %s\n", lineno, e);
			if(len + (size_t)n + 1 > cap){ char *r = realloc(res, cap * 2); if(!r) break; res = r; cap *= 2; }
			memcpy(res + len, one, (size_t)n);
			len += (size_t)n;
			errors++;
		}
	}
	free(buf);
	if(journal) fflush(journal);
	if(journal_lines > 2 * table_count + 1024) compact();
	char head[128];
	int hn = snprintf(head, sizeof(head), "res %s\n", corr);
	size_t total = (size_t)hn + len + strlen(stats);
	char *out = malloc(total + 1);
	if(out){
		memcpy(out, head, (size_t)hn);
		memcpy(out + hn, res, len);
		memcpy(out + hn + len, stats, strlen(stats));
		mosquitto_broker_publish_copy(NULL, RESPONSE_TOPIC, (int)total, out, 1, false, NULL);
		free(out);
	}
	free(res);
	return MOSQ_ERR_SUCCESS;
}

/* ---------- auth and ACL ---------- */

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event; (void)userdata;
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *clientid = mosquitto_client_id(ed->client);
	const char *address = mosquitto_client_address(ed->client);
	const char *user = ed->username, *pw = ed->password;
	if(!user || !pw || !clientid){ n_malformed++; return MOSQ_ERR_AUTH; }
	char key[MAX_ID + 8];
	const char *stored = NULL;
	if(admin_username && !strcmp(user, admin_username)){
		if(strncmp(clientid, "edgefleet-", 10)){ n_client_id++; return MOSQ_ERR_AUTH; }
		stored = admin_hash;
	}else if(!strncmp(user, "enroll-", 7)){
		if(!valid_token_id(user + 7)){ n_malformed++; return MOSQ_ERR_AUTH; }
		if(strncmp(clientid, "enroll-", 7) || !valid_id(clientid + 7, strlen(clientid + 7))){ n_client_id++; return MOSQ_ERR_AUTH; }
		if(!device_id_ok(clientid + 7)){ n_reserved++; return MOSQ_ERR_AUTH; }
		snprintf(key, sizeof(key), "t:%s", user + 7);
		entry *e = find(key);
		stored = e ? e->hash : NULL;
	}else{
		if(!valid_id(user, strlen(user))){ n_malformed++; return MOSQ_ERR_AUTH; }
		if(reserved(user)){ n_reserved++; return MOSQ_ERR_AUTH; }
		if(strcmp(clientid, user)){ n_client_id++; return MOSQ_ERR_AUTH; }
		snprintf(key, sizeof(key), "d:%s", user);
		entry *e = find(key);
		stored = e ? e->hash : NULL;
	}
	if(!brake_admit(clientid, user, address)){ n_braked++; return MOSQ_ERR_AUTH; }
	if(stored && verify(pw, stored)){ brake_succeeded(clientid, user); return MOSQ_ERR_SUCCESS; }
	brake_failed(clientid, user, address);
	n_bad_credentials++;
	return MOSQ_ERR_AUTH;
}

/* "edgefleet/v1/<area>/<id>/<rest>": id and rest, or 0 */
static int split(const char *topic, const char *area, const char **id, size_t *idlen, const char **rest)
{
	size_t rl = strlen(ROOT), al = strlen(area);
	if(strncmp(topic, ROOT, rl) || strncmp(topic + rl, area, al) || topic[rl + al] != '/') return 0;
	*id = topic + rl + al + 1;
	const char *slash = strchr(*id, '/');
	if(!slash) return 0;
	*idlen = (size_t)(slash - *id);
	*rest = slash + 1;
	return valid_id(*id, *idlen);
}

static int device_acl(const char *clientid, const struct mosquitto_evt_acl_check *ed)
{
	const char *id, *rest;
	size_t idlen;
	size_t cl = strlen(clientid);
	if(split(ed->topic, "devices", &id, &idlen, &rest) && idlen == cl && !strncmp(id, clientid, cl)){
		if(ed->access == MOSQ_ACL_WRITE){
			if(ed->retain){
				if(!strcmp(rest, "status")) return 1;
				n_retain_denied++;
				return 0;
			}
			return !strcmp(rest, "birth") || !strcmp(rest, "status") || !strcmp(rest, "heartbeat") || !strcmp(rest, "report") || !strcmp(rest, "xfer/req");
		}
		return !strcmp(rest, "cmd") || !strcmp(rest, "xfer/data");
	}
	if(ed->access != MOSQ_ACL_WRITE && split(ed->topic, "transfers", &id, &idlen, &rest) && !strcmp(rest, "data")){
		char key[2 * MAX_ID + 8];
		snprintf(key, sizeof(key), "x:%.*s/%s", (int)idlen, id, clientid);
		return find(key) != NULL;
	}
	return 0;
}

static int enrollee_acl(const char *clientid, const struct mosquitto_evt_acl_check *ed)
{
	const char *id, *rest;
	size_t idlen;
	const char *dev = clientid + 7;
	size_t dl = strlen(dev);
	if(!split(ed->topic, "enroll", &id, &idlen, &rest) || idlen != dl || strncmp(id, dev, dl)) return 0;
	if(ed->access == MOSQ_ACL_WRITE) return !ed->retain && !strcmp(rest, "req");
	return !strcmp(rest, "res");
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	(void)event; (void)userdata;
	struct mosquitto_evt_acl_check *ed = event_data;
	if(ed->access == MOSQ_ACL_UNSUBSCRIBE) return MOSQ_ERR_SUCCESS;
	const char *user = mosquitto_client_username(ed->client);
	const char *clientid = mosquitto_client_id(ed->client);
	int ok = 0;
	if(!user || !clientid || !ed->topic) ok = 0;
	else if(admin_username && !strcmp(user, admin_username)){
		ok = !strncmp(ed->topic, ROOT, strlen(ROOT))
			|| (ed->access == MOSQ_ACL_WRITE && !strcmp(ed->topic, CONTROL_TOPIC))
			|| (ed->access != MOSQ_ACL_WRITE && !strcmp(ed->topic, RESPONSE_TOPIC));
	}else if(!strncmp(user, "enroll-", 7)) ok = enrollee_acl(clientid, ed);
	else ok = device_acl(clientid, ed);
	if(ok) return MOSQ_ERR_SUCCESS;
	n_acl_denied++;
	return MOSQ_ERR_ACL_DENIED;
}

/* ---------- plugin entry points ---------- */

static mosquitto_plugin_id_t *plugin_id = NULL;

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++) if(supported_versions[i] == 5) return 5;
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	plugin_id = identifier;
	for(int i = 0; i < opt_count; i++){
		const char *k = opts[i].key, *v = opts[i].value;
		if(!strcmp(k, "admin_username")) admin_username = strdup(v);
		else if(!strcmp(k, "admin_password_hash")) admin_hash = strdup(v);
		else if(!strcmp(k, "state_file")) state_path = strdup(v);
		else if(!strcmp(k, "brake_free_per_login")) free_per_login = atof(v);
		else if(!strcmp(k, "brake_free_per_address")) free_per_address = atof(v);
		else if(!strcmp(k, "brake_base_delay_ms")) base_delay = atof(v) / 1000.0;
		else if(!strcmp(k, "brake_max_delay_ms")) max_delay = atof(v) / 1000.0;
	}
	if(!admin_username || !admin_hash){
		mosquitto_log_printf(MOSQ_LOG_ERR, "edgefleet-auth: plugin_opt_admin_username and plugin_opt_admin_password_hash are required");
		return MOSQ_ERR_INVAL;
	}
	load_journal();
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgefleet-auth: %zu logins and grants loaded", table_count);
	if(mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL)
		|| mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL)
		|| mosquitto_callback_register(plugin_id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC, NULL)) return MOSQ_ERR_UNKNOWN;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata; (void)opts; (void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC);
	if(journal){ fclose(journal); journal = NULL; }
	for(size_t i = 0; i < table_size; i++){ entry *e = table[i]; while(e){ entry *n = e->next; free_entry(e); e = n; } }
	free(table); table = NULL; table_size = table_count = 0;
	free(admin_username); free(admin_hash); free(state_path);
	admin_username = admin_hash = state_path = NULL;
	return MOSQ_ERR_SUCCESS;
}
