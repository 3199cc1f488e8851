// Reads an MCAP file with @mcap/core, the reference TypeScript reader, two
// ways: indexed (summary, chunk indexes, message indexes; it checks the
// summary CRC and each chunk's CRC) and streamed (every record in file
// order; it checks chunk CRCs too). Prints what the Go end-to-end test
// compares with the capture (64-bit integers as strings, data as base64).
// The data section CRC in Data End is checked here against the file's bytes.
// Usage: node readmcap.mjs FILE
import { readFile } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { McapIndexedReader, McapStreamReader } from '@mcap/core'
import { decompress } from 'fzstd'

const bytes = new Uint8Array(await readFile(process.argv[2]))
const decompressHandlers = { zstd: (buf, size) => decompress(buf, new Uint8Array(Number(size))) }
const readable = {
  size: async () => BigInt(bytes.length),
  read: async (offset, length) => bytes.subarray(Number(offset), Number(offset + length)),
}
const reader = await McapIndexedReader.Initialize({ readable, decompressHandlers })
const indexed = []
for await (const m of reader.readMessages({ validateCrcs: true })) indexed.push(m)

const stream = new McapStreamReader({ decompressHandlers, validateCrcs: true })
stream.append(bytes)
const streamed = []
let record, dataEnd
while ((record = stream.nextRecord())) {
  if (record.type === 'Message') streamed.push(record)
  if (record.type === 'DataEnd') dataEnd = record
}
if (!stream.done()) throw new Error('stream reader: not at the end of the file')
const dataCrc = crc32(bytes.subarray(0, Number(reader.dataEndOffset)))

const big = (k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Map ? Object.fromEntries(v) : v)
const msg = m => ({ channel: m.channelId, sequence: m.sequence, log_time: m.logTime, publish_time: m.publishTime,
  data: Buffer.from(m.data).toString('base64') })
process.stdout.write(JSON.stringify({
  library: reader.header.library,
  statistics: reader.statistics,
  schemas: [...reader.schemasById.values()].map(s => ({ id: s.id, name: s.name, encoding: s.encoding,
    data: Buffer.from(s.data).toString('base64') })),
  channels: [...reader.channelsById.values()].map(c => ({ id: c.id, topic: c.topic, encoding: c.messageEncoding,
    schema: c.schemaId, metadata: c.metadata })),
  chunks: reader.chunkIndexes.length,
  compression: [...new Set(reader.chunkIndexes.map(c => c.compression))],
  data_crc_ok: dataEnd !== undefined && dataEnd.dataSectionCrc === dataCrc,
  indexed: indexed.map(msg),
  streamed: streamed.map(msg),
}, big))
