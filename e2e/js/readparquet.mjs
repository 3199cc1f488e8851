// Reads a Parquet file with hyparquet (an independent JavaScript reader) and
// prints what the Go end-to-end test compares with the capture: the schema
// as the footer states it, the row groups, and every row as JSON (64-bit
// integers as strings, binary as base64, timestamps as ISO text).
// Usage: node readparquet.mjs FILE
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'

const file = await asyncBufferFromFile(process.argv[2])
const meta = await parquetMetadataAsync(file)
const schema = parquetSchema(meta).children.map(c => ({
  name: c.element.name,
  type: c.element.type,
  repetition: c.element.repetition_type,
  logical: c.element.logical_type ?? null,
  converted: c.element.converted_type ?? null,
}))
const groups = meta.row_groups.map(g => ({
  rows: Number(g.num_rows),
  codecs: [...new Set(g.columns.map(c => c.meta_data.codec))],
  topicEncodings: g.columns.find(c => c.meta_data.path_in_schema[0] === 'topic').meta_data.encodings,
}))
const rows = await parquetReadObjects({ file, compressors, utf8: false })
const json = (k, v) => {
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64')
  if (v instanceof Date) return v.toISOString()
  return v
}
process.stdout.write(JSON.stringify({ created_by: meta.created_by, num_rows: Number(meta.num_rows), schema, groups, rows }, json))
