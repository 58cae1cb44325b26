/*
 * libmongoc_bench.c: the floor — the benchmark's single- and multi-document tasks written directly
 * against libmongoc (one client, no pool), for the Lua figures to be compared with.
 *
 *   libmongoc_bench URI DATA_DIR N REPEAT LARGE     prints one JSON result per line
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double
wall (void)
{
   struct timespec ts;
   clock_gettime (CLOCK_MONOTONIC, &ts);
   return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
cpu (void)
{
   struct rusage r;
   getrusage (RUSAGE_SELF, &r);
   return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
}

static bson_t *
load (const char *dir, const char *name)
{
   char path[1024];
   bson_error_t e;
   bson_json_reader_t *r;
   bson_t *doc = bson_new ();
   snprintf (path, sizeof path, "%s/%s", dir, name);
   r = bson_json_reader_new_from_file (path, &e);
   if (!r || bson_json_reader_read (r, doc, &e) <= 0) {
      fprintf (stderr, "cannot read %s: %s\n", path, e.message);
      exit (1);
   }
   bson_json_reader_destroy (r);
   return doc;
}

static int
cmpd (const void *a, const void *b)
{
   double x = *(const double *) a, y = *(const double *) b;
   return x < y ? -1 : x > y;
}

typedef void (*task_fn) (mongoc_collection_t *coll, int n, const bson_t *doc);

static void
report (const char *task, int ops, size_t bytes, double *walls, double *cpus, int repeat)
{
   qsort (walls, (size_t) repeat, sizeof *walls, cmpd);
   qsort (cpus, (size_t) repeat, sizeof *cpus, cmpd);
   printf ("{\"task\": \"%s\", \"client\": \"libmongoc (C)\", \"ops\": %d, \"bytes\": %zu, \"seconds\": %.6f, "
           "\"cpu_seconds\": %.6f, \"wall_spread\": [%.6f, %.6f], \"iterations\": %d}\n",
           task, ops, bytes, walls[repeat / 2], cpus[repeat / 2], walls[0], walls[repeat - 1], repeat);
   fflush (stdout);
}

static void
find_by_id (mongoc_collection_t *coll, int n, const bson_t *unused)
{
   (void) unused;
   for (int i = 1; i <= n; i++) {
      bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
      const bson_t *doc;
      BSON_APPEND_INT32 (&filter, "_id", i);
      BSON_APPEND_INT64 (&opts, "limit", 1);
      mongoc_cursor_t *c = mongoc_collection_find_with_opts (coll, &filter, &opts, NULL);
      mongoc_cursor_next (c, &doc);
      mongoc_cursor_destroy (c);
      bson_destroy (&filter);
      bson_destroy (&opts);
   }
}

static void
insert_one (mongoc_collection_t *coll, int n, const bson_t *doc)
{
   for (int i = 0; i < n; i++) {
      mongoc_collection_insert_one (coll, doc, NULL, NULL, NULL);
   }
}

static void
find_all (mongoc_collection_t *coll, int n, const bson_t *unused)
{
   bson_t filter = BSON_INITIALIZER;
   const bson_t *doc;
   int seen = 0;
   (void) n;
   (void) unused;
   mongoc_cursor_t *c = mongoc_collection_find_with_opts (coll, &filter, NULL, NULL);
   while (mongoc_cursor_next (c, &doc)) {
      seen++;
   }
   mongoc_cursor_destroy (c);
}

static void
insert_many (mongoc_collection_t *coll, int n, const bson_t *doc)
{
   const bson_t **docs = malloc (sizeof *docs * (size_t) n);
   for (int i = 0; i < n; i++) {
      docs[i] = doc;
   }
   mongoc_collection_insert_many (coll, docs, (size_t) n, NULL, NULL, NULL);
   free (docs);
}

static void
run (mongoc_database_t *db, const char *coll_name, const char *task, task_fn fn, int n, const bson_t *doc,
     size_t bytes, int repeat, int fresh)
{
   double *walls = calloc ((size_t) repeat, sizeof *walls), *cpus = calloc ((size_t) repeat, sizeof *cpus);
   for (int r = 0; r < repeat; r++) {
      mongoc_collection_t *coll = mongoc_database_get_collection (db, coll_name);
      if (fresh) {
         mongoc_collection_drop (coll, NULL);
      }
      double w0 = wall (), c0 = cpu ();
      fn (coll, n, doc);
      walls[r] = wall () - w0;
      cpus[r] = cpu () - c0;
      mongoc_collection_destroy (coll);
   }
   report (task, n, bytes, walls, cpus, repeat);
   free (walls);
   free (cpus);
}

int
main (int argc, char **argv)
{
   if (argc < 5) {
      fprintf (stderr, "usage: %s URI DATA_DIR N REPEAT\n", argv[0]);
      return 2;
   }
   const char *dir = argv[2];
   int n = atoi (argv[3]), repeat = atoi (argv[4]), large_count = argc > 5 ? atoi (argv[5]) : 10;
   mongoc_init ();
   mongoc_client_t *client = mongoc_client_new (argv[1]);
   mongoc_database_t *db = mongoc_client_get_database (client, "bench_c");
   bson_t *tweet = load (dir, "tweet.json"), *small = load (dir, "small_doc.json"), *large = load (dir, "large_doc.json");

   /* the tweets, _id 1..n */
   mongoc_collection_t *tweets = mongoc_database_get_collection (db, "tweets");
   mongoc_collection_drop (tweets, NULL);
   for (int i = 1; i <= n; i++) {
      bson_t d = BSON_INITIALIZER;
      BSON_APPEND_INT32 (&d, "_id", i);
      bson_concat (&d, tweet);
      mongoc_collection_insert_one (tweets, &d, NULL, NULL, NULL);
      bson_destroy (&d);
   }
   mongoc_collection_destroy (tweets);

   run (db, "tweets", "find_one by _id", find_by_id, n, NULL, (size_t) n * tweet->len, repeat, 0);
   run (db, "smalls", "insert_one small", insert_one, n, small, (size_t) n * small->len, repeat, 1);
   run (db, "tweets", "find all tweets", find_all, n, NULL, (size_t) n * tweet->len, repeat, 0);
   run (db, "smalls", "insert_many small", insert_many, n, small, (size_t) n * small->len, repeat, 1);
   if (large_count > 0) {
      run (db, "larges", "insert_many large", insert_many, large_count, large, (size_t) large_count * large->len, repeat,
           1);
   }

   bson_destroy (tweet);
   bson_destroy (small);
   bson_destroy (large);
   mongoc_database_destroy (db);
   mongoc_client_destroy (client);
   mongoc_cleanup ();
   return 0;
}
