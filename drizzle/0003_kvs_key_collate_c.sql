-- Keys sort bytewise: GET /kv pages in the order a KV store's clients expect, and a
-- prefix match (LIKE 'p%') is a range scan of the primary key index, which a
-- linguistic collation does not allow. Rebuilds the primary key index.
ALTER TABLE "kvs" ALTER COLUMN "key" SET DATA TYPE text COLLATE "C";
