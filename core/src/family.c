/*
 * family.c: the `family` option (4 or 6, as Node's and Mongoose's): the seed hosts are resolved in
 * that address family only.
 *
 * libmongoc 1.23 has no such option, and the address family it keeps per host is not carried into
 * the topology it builds, so the seeds of the pool's URI are replaced by their address in that
 * family, resolved here. This runs on a worker (it may wait for DNS), on the pool's private copy
 * of the URI. Members that a replica set names itself are resolved as the system does; with TLS the
 * host names are kept (certificates name hosts, not addresses) and only checked to resolve.
 */
#include "connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

/* libmongoc exports these without declaring them publicly (mongoc-uri-private.h, stable since 1.9). */
bool mongoc_uri_upsert_host (mongoc_uri_t *uri, const char *host, uint16_t port, bson_error_t *error);
void mongoc_uri_remove_host (mongoc_uri_t *uri, const char *host, uint16_t port);

#define MG_SEEDS_MAX 64

bool
mg_uri_restrict_family (mongoc_uri_t *uri, int32_t family, char *why, size_t why_size)
{
   struct {
      char host[BSON_HOST_NAME_MAX + 1];
      uint16_t port;
   } seeds[MG_SEEDS_MAX];
   size_t n = 0;
   bool tls = mongoc_uri_get_tls (uri);
   int af = family == 6 ? AF_INET6 : AF_INET;

   for (const mongoc_host_list_t *h = mongoc_uri_get_hosts (uri); h && n < MG_SEEDS_MAX; h = h->next, n++) {
      bson_strncpy (seeds[n].host, h->host, sizeof seeds[n].host);
      seeds[n].port = h->port;
   }
   for (size_t i = 0; i < n; i++) {
      struct addrinfo hints = {0}, *res = NULL;
      char literal[INET6_ADDRSTRLEN] = "";
      bson_error_t be;
      int rc;
      if (seeds[i].host[0] == '/') {
         continue; /* a Unix domain socket */
      }
      hints.ai_family = af;
      hints.ai_socktype = SOCK_STREAM;
      rc = getaddrinfo (seeds[i].host, NULL, &hints, &res);
      if (rc != 0 || !res) {
         bson_snprintf (why, why_size, "family=%d: %s has no IPv%d address (%s)", (int) family, seeds[i].host,
                        (int) family, rc ? gai_strerror (rc) : "no result");
         return false;
      }
      if (af == AF_INET) {
         inet_ntop (AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr, literal, sizeof literal);
      } else {
         inet_ntop (AF_INET6, &((struct sockaddr_in6 *) res->ai_addr)->sin6_addr, literal, sizeof literal);
      }
      freeaddrinfo (res);
      if (tls || strcmp (literal, seeds[i].host) == 0) {
         continue;
      }
      mongoc_uri_remove_host (uri, seeds[i].host, seeds[i].port);
      if (!mongoc_uri_upsert_host (uri, literal, seeds[i].port, &be)) {
         bson_snprintf (why, why_size, "family=%d: cannot use %s's address %s: %s", (int) family, seeds[i].host,
                        literal, be.message);
         return false;
      }
   }
   return true;
}
