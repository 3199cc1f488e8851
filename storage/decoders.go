package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
)

// DecoderRule is one stored FILTER=FORMAT of a capture's decoder map.
type DecoderRule struct {
	Filter string
	Format string
}

// Decoders are the payload decoders a capture carries (format version 4):
// its --decode map in order and the protobuf descriptors --proto
// compiled, as a serialized google.protobuf.FileDescriptorSet. Storage keeps
// them as given; package decode reads them.
type Decoders struct {
	Rules         []DecoderRule
	DescriptorSet []byte   // nil: none
	Files         []string // the .proto files in DescriptorSet, for listing
}

// IsEmpty reports whether there is nothing to store.
func (d Decoders) IsEmpty() bool { return len(d.Rules) == 0 && len(d.DescriptorSet) == 0 }

// Decoders reads the decoders the capture carries; a capture older than
// format version 4 carries none.
func (c *Capture) Decoders(ctx context.Context) (Decoders, error) {
	if c.parts != nil {
		return c.parts.dec, nil
	}
	var d Decoders
	if c.version < 4 {
		return d, nil
	}
	rows, err := c.r.QueryContext(ctx, "SELECT filter, format FROM decoders ORDER BY pos")
	if err != nil {
		return d, c.wrap("read decoders", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r DecoderRule
		if err := rows.Scan(&r.Filter, &r.Format); err != nil {
			return d, c.wrap("read decoders", err)
		}
		d.Rules = append(d.Rules, r)
	}
	if err := rows.Err(); err != nil {
		return d, c.wrap("read decoders", err)
	}
	var files string
	err = c.r.QueryRowContext(ctx, "SELECT descriptor_set, files FROM decoder_schema WHERE id = 1").Scan(&d.DescriptorSet, &files)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return d, nil
	case err != nil:
		return d, c.wrap("read decoder schema", err)
	}
	if err := json.Unmarshal([]byte(files), &d.Files); err != nil {
		return d, c.wrap("read decoder schema", err)
	}
	return d, nil
}

// SetDecoders replaces the decoders the capture carries, in one
// transaction, migrating the capture to the current format first. It
// touches nothing else. The capture must be open for writing.
func (c *Capture) SetDecoders(ctx context.Context, d Decoders) error {
	if c.w == nil {
		return ErrReadOnly
	}
	if err := c.migrate(ctx); err != nil {
		return err
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM decoders"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM decoder_schema"); err != nil {
			return err
		}
		for i, r := range d.Rules {
			if _, err := tx.ExecContext(ctx, "INSERT INTO decoders (pos, filter, format) VALUES (?, ?, ?)",
				i+1, r.Filter, r.Format); err != nil {
				return err
			}
		}
		if len(d.DescriptorSet) == 0 {
			return nil
		}
		files, err := json.Marshal(d.Files)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO decoder_schema (id, descriptor_set, files) VALUES (1, ?, ?)",
			d.DescriptorSet, string(files))
		return err
	})
	return c.wrap("store decoders", err)
}

// carryDecoders gives out the decoders its inputs carry (cut, merge):
// joinDecoders.
func carryDecoders(ctx context.Context, ins []*Capture, out *Capture) error {
	var ds []Decoders
	for _, in := range ins {
		d, err := in.Decoders(ctx)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	all := joinDecoders(ds)
	if all.IsEmpty() {
		return nil
	}
	return out.SetDecoders(ctx, all)
}

// joinDecoders returns the decoders of several captures as one: their
// rules in input order, each once (the first match still wins), and their
// descriptor sets concatenated — one FileDescriptorSet holding every file,
// readers keeping the first of each name.
func joinDecoders(ds []Decoders) Decoders {
	var all Decoders
	seenRule, seenSet, seenFile := map[DecoderRule]bool{}, map[string]bool{}, map[string]bool{}
	for _, d := range ds {
		for _, r := range d.Rules {
			if !seenRule[r] {
				seenRule[r] = true
				all.Rules = append(all.Rules, r)
			}
		}
		if len(d.DescriptorSet) > 0 && !seenSet[string(d.DescriptorSet)] {
			seenSet[string(d.DescriptorSet)] = true
			all.DescriptorSet = append(all.DescriptorSet, d.DescriptorSet...)
			for _, f := range d.Files {
				if !seenFile[f] {
					seenFile[f] = true
					all.Files = append(all.Files, f)
				}
			}
		}
	}
	return all
}
