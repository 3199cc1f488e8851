package storage

// ApplicationID marks a SQLite file as an mqtape capture (PRAGMA application_id).
// It spells "MQTP" in ASCII.
const ApplicationID = 0x4D515450

// migrations are applied in order, each in its own BEGIN IMMEDIATE
// transaction; PRAGMA user_version holds how many have been applied, which is
// the capture's format version. Append only: never edit a released migration.
// docs/capture-format.md documents the resulting schema.
var migrations = []string{
	// 1: the first format. Pages of 64 KiB make batched inserts of larger
	// payloads about twice as fast as the 4 KiB default.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
	id             INTEGER PRIMARY KEY,
	source         TEXT    NOT NULL,           -- subscriber | broker | import | cut | merge
	broker         TEXT    NOT NULL,           -- URL without user info
	client_id      TEXT    NOT NULL,
	protocol       INTEGER NOT NULL,           -- 4 = MQTT 3.1.1, 5 = MQTT 5
	clean_session  INTEGER NOT NULL,
	filters        TEXT    NOT NULL DEFAULT '[]', -- JSON: [{"filter","qos","granted"}]
	started_ns     INTEGER NOT NULL,           -- Unix ns, wall clock
	last_ns        INTEGER,                    -- Unix ns of the last flush; survives a crash
	ended_ns       INTEGER,                    -- Unix ns; NULL until closed cleanly
	stop_reason    TEXT,                       -- NULL until closed cleanly
	first_seq      INTEGER,                    -- seq of the session's first message; NULL when none
	last_seq       INTEGER,                    -- seq of the session's last message
	dropped        INTEGER NOT NULL DEFAULT 0, -- messages received but not stored
	mqtape_version TEXT    NOT NULL,
	host           TEXT    NOT NULL
);

CREATE TABLE topics (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

CREATE TABLE messages (
	seq        INTEGER PRIMARY KEY,            -- arrival order across the file
	session    INTEGER NOT NULL REFERENCES sessions(id),
	ts_ns      INTEGER NOT NULL,               -- Unix ns, wall clock at receipt
	offset_ns  INTEGER NOT NULL,               -- monotonic ns since the session started
	topic_id   INTEGER NOT NULL REFERENCES topics(id),
	qos        INTEGER NOT NULL,
	retain     INTEGER NOT NULL,               -- retain flag as received
	from_store INTEGER NOT NULL,               -- 1: sent from the broker's retained store
	dup        INTEGER NOT NULL,
	packet_id  INTEGER NOT NULL,               -- 0 for QoS 0
	payload    BLOB    NOT NULL
);
-- Within a session, seq, offset_ns and ts_ns never decrease together: time
-- ranges are found by binary search on seq, so no time index is kept.
-- messages_by_topic (topic_id, seq) is dropped while a session records (it
-- would halve the insert rate) and rebuilt when the session ends.

CREATE TABLE events (
	id        INTEGER PRIMARY KEY,
	session   INTEGER NOT NULL REFERENCES sessions(id),
	ts_ns     INTEGER NOT NULL,
	offset_ns INTEGER NOT NULL,
	kind      TEXT    NOT NULL,
	detail    TEXT    NOT NULL DEFAULT ''
);

CREATE VIEW messages_view AS
SELECT m.seq, m.session, m.ts_ns, m.offset_ns, t.name AS topic, m.qos, m.retain,
       m.from_store, m.dup, m.packet_id, length(m.payload) AS size, m.payload
FROM messages m JOIN topics t ON t.id = m.topic_id;
`,
	// 2: publisher client ids, for captures recorded inside the broker
	// (mqtape serve). NULL client_ref: recorded by a subscriber, which
	// cannot know the publisher.
	`
CREATE TABLE clients (
	id        INTEGER PRIMARY KEY,
	client_id TEXT NOT NULL UNIQUE
);
ALTER TABLE messages ADD COLUMN client_ref INTEGER REFERENCES clients(id);
DROP VIEW messages_view;
CREATE VIEW messages_view AS
SELECT m.seq, m.session, m.ts_ns, m.offset_ns, t.name AS topic, m.qos, m.retain,
       m.from_store, m.dup, m.packet_id, length(m.payload) AS size, m.payload,
       coalesce(c.client_id, '') AS client_id
FROM messages m JOIN topics t ON t.id = m.topic_id LEFT JOIN clients c ON c.id = m.client_ref;
`,
	// 3: MQTT 5 properties, as a JSON object with the keys of mqtape
	// export's "properties" (NULL: none, or an MQTT 3.1.1 recording).
	`
ALTER TABLE messages ADD COLUMN props TEXT;
DROP VIEW messages_view;
CREATE VIEW messages_view AS
SELECT m.seq, m.session, m.ts_ns, m.offset_ns, t.name AS topic, m.qos, m.retain,
       m.from_store, m.dup, m.packet_id, length(m.payload) AS size, m.payload,
       coalesce(c.client_id, '') AS client_id, m.props
FROM messages m JOIN topics t ON t.id = m.topic_id LEFT JOIN clients c ON c.id = m.client_ref;
`,
	// 4: the payload decoders the capture carries: the --decode map in
	// order, and the protobuf descriptors (a FileDescriptorSet) --proto
	// compiled, so readers decode without the .proto files.
	`
CREATE TABLE decoders (
	pos    INTEGER PRIMARY KEY,
	filter TEXT NOT NULL,
	format TEXT NOT NULL
);
CREATE TABLE decoder_schema (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	descriptor_set BLOB NOT NULL,
	files          TEXT NOT NULL
);
`,
	// 5: zstd-compressed payloads (migrationCompression).
	migrationCompression,
	// 6: compressed payloads stored without their zstd frame's headers
	// (migrationFrameBlocks).
	migrationFrameBlocks,
}

// compressionVersion is the format version that added zstd-compressed
// payloads (migrationCompression). Renumbering it is moving
// migrationCompression in migrations and changing this constant.
const compressionVersion = 5

// migrationCompression: payloads stored zstd-compressed with a dictionary
// (record --compress). A NULL zstd_dict is a payload stored as it is; else
// payload is one zstd frame made with dictionary zstd_dicts.id = zstd_dict
// and payload_size is its uncompressed length. Each dictionary is scoped
// by its id: a capture (later each part of one) adds its own.
const migrationCompression = `
CREATE TABLE zstd_dicts (
	id         INTEGER PRIMARY KEY,        -- also the dictionary id inside the zstd frames
	session    INTEGER NOT NULL REFERENCES sessions(id), -- the session it was trained in
	created_ns INTEGER NOT NULL,           -- Unix ns
	samples    INTEGER NOT NULL,           -- how many payloads it was trained on
	dict       BLOB    NOT NULL            -- zstd dictionary format (zstd -D FILE)
);
ALTER TABLE messages ADD COLUMN zstd_dict INTEGER REFERENCES zstd_dicts(id);
ALTER TABLE messages ADD COLUMN payload_size INTEGER;
DROP VIEW messages_view;
CREATE VIEW messages_view AS
SELECT m.seq, m.session, m.ts_ns, m.offset_ns, t.name AS topic, m.qos, m.retain,
       m.from_store, m.dup, m.packet_id, coalesce(m.payload_size, length(m.payload)) AS size, m.payload,
       coalesce(c.client_id, '') AS client_id, m.props, m.zstd_dict
FROM messages m JOIN topics t ON t.id = m.topic_id LEFT JOIN clients c ON c.id = m.client_ref;
`

// migrationFrameBlocks: from format 6 a compressed row whose zstd frame
// is one compressed block holds that block's content alone; its headers
// are what the row already says (blockHeaders): the magic number, the
// descriptor 0xa3, zstd_dict and payload_size as 4-byte little-endian
// numbers, and the block header length(payload)×8 + 5 in 3 bytes. A row
// that begins with the magic number holds a whole frame (every row written
// by format 5; frames of several, raw or RLE blocks). Rows and tables stay
// as they are; zstd_frames gives every compressed row's whole frame, for
// the zstd tool (b.t holds the bytes 0 to 255: substr picks a number's
// bytes from it, as sqlite3 before 3.41 has no unhex).
const migrationFrameBlocks = `
CREATE VIEW zstd_frames AS
WITH b(t) AS (SELECT X'000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF')
SELECT m.seq, m.zstd_dict, m.payload_size, CAST(CASE WHEN substr(m.payload, 1, 4) = X'28B52FFD' THEN m.payload
	ELSE X'28B52FFDA3' ||
		substr(b.t, ((m.zstd_dict >> 0) & 255) + 1, 1) ||
		substr(b.t, ((m.zstd_dict >> 8) & 255) + 1, 1) ||
		substr(b.t, ((m.zstd_dict >> 16) & 255) + 1, 1) ||
		substr(b.t, ((m.zstd_dict >> 24) & 255) + 1, 1) ||
		substr(b.t, ((m.payload_size >> 0) & 255) + 1, 1) ||
		substr(b.t, ((m.payload_size >> 8) & 255) + 1, 1) ||
		substr(b.t, ((m.payload_size >> 16) & 255) + 1, 1) ||
		substr(b.t, ((m.payload_size >> 24) & 255) + 1, 1) ||
		substr(b.t, (((length(m.payload) * 8 + 5) >> 0) & 255) + 1, 1) ||
		substr(b.t, (((length(m.payload) * 8 + 5) >> 8) & 255) + 1, 1) ||
		substr(b.t, (((length(m.payload) * 8 + 5) >> 16) & 255) + 1, 1) ||
		m.payload END AS BLOB) AS frame
FROM messages m, b WHERE m.zstd_dict IS NOT NULL;
`

// FormatVersion is the capture format this build writes and the newest it reads.
var FormatVersion = len(migrations)
