// Runs SQL statements (a JSON array on stdin) with DuckDB in directory DIR
// and prints each one's rows as a JSON array of arrays (values as JSON).
// Usage: node duckdb.mjs DIR < statements.json
import { DuckDBInstance } from '@duckdb/node-api'
import { readFileSync } from 'node:fs'

process.chdir(process.argv[2])
const statements = JSON.parse(readFileSync(0, 'utf8'))
const db = await DuckDBInstance.create(':memory:')
const conn = await db.connect()
const results = []
for (const sql of statements) {
  const reader = await conn.runAndReadAll(sql)
  results.push(reader.getRowsJson())
}
process.stdout.write(JSON.stringify(results))
