package decode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/linker"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// ErrBadSchema marks a .proto that does not compile or a descriptor set
// that cannot be read.
var ErrBadSchema = errors.New("bad protobuf schema")

// Schema is a set of protobuf file descriptors: what --proto compiled or a
// FileDescriptorSet held, with everything they import (the well-known
// types google/protobuf/*.proto are built in).
type Schema struct {
	files *protoregistry.Files
	types *dynamicpb.Types
}

// EmptySchema has no files.
func EmptySchema() *Schema { return newSchema(new(protoregistry.Files)) }

func newSchema(files *protoregistry.Files) *Schema {
	return &Schema{files: files, types: dynamicpb.NewTypes(files)}
}

// Len is the number of files in the schema, imports included.
func (s *Schema) Len() int { return s.files.NumFiles() }

// Message finds a message type by its full name.
func (s *Schema) Message(name string) (protoreflect.MessageDescriptor, error) {
	d, err := s.files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, badFormat("unknown protobuf message type %q (.proto files loaded: %s)", name, s.fileList())
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, badFormat("%q is not a protobuf message type", name)
	}
	return md, nil
}

func (s *Schema) fileList() string {
	var names []string
	s.files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(f.Path(), "google/protobuf/") {
			names = append(names, f.Path())
		}
		return true
	})
	if len(names) == 0 {
		return "none; give --proto FILE"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Files names the schema's files (imports included), sorted.
func (s *Schema) Files() []string {
	var names []string
	s.files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		names = append(names, f.Path())
		return true
	})
	slices.Sort(names)
	return names
}

// Merge adds other's files that s does not have yet (by path).
func (s *Schema) Merge(other *Schema) error {
	var err error
	other.files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if _, e := s.files.FindFileByPath(f.Path()); e == nil {
			return true
		}
		err = s.files.RegisterFile(f)
		return err == nil
	})
	if err != nil {
		return badSchema("%v", err)
	}
	s.types = dynamicpb.NewTypes(s.files)
	return nil
}

// Marshal gives the schema as a serialized FileDescriptorSet (imports
// included, so it stands alone).
func (s *Schema) Marshal() ([]byte, error) {
	var set descriptorpb.FileDescriptorSet
	for _, name := range s.Files() {
		f, _ := s.files.FindFileByPath(name)
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(&set)
}

// DescriptorSet gives the serialized FileDescriptorSet that describes one
// message type on its own: the file defining it and every file that file
// imports, directly or not, each before the files that import it (what
// MCAP's protobuf schemas and Foxglove expect).
func (s *Schema) DescriptorSet(message string) ([]byte, error) {
	md, err := s.Message(message)
	if err != nil {
		return nil, err
	}
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(md.ParentFile())
	return proto.MarshalOptions{Deterministic: true}.Marshal(&set)
}

// UnmarshalSchema reads a serialized FileDescriptorSet. Well-known types it
// imports without including are taken from the built-in copies.
func UnmarshalSchema(b []byte) (*Schema, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, badSchema("not a FileDescriptorSet: %v", err)
	}
	// Concatenated sets (a merged capture's) may name a file twice: the
	// first wins.
	have := map[string]bool{}
	unique := set.File[:0]
	for _, f := range set.File {
		if !have[f.GetName()] {
			have[f.GetName()] = true
			unique = append(unique, f)
		}
	}
	set.File = unique
	for _, f := range set.File {
		for _, dep := range f.Dependency {
			if have[dep] {
				continue
			}
			if d, err := protoregistry.GlobalFiles.FindFileByPath(dep); err == nil && strings.HasPrefix(dep, "google/protobuf/") {
				set.File = append(set.File, protodesc.ToFileDescriptorProto(d))
				have[dep] = true
			}
		}
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, badSchema("%v", err)
	}
	return newSchema(files), nil
}

// LoadSchema compiles .proto files (or reads FileDescriptorSets, as
// protoc --include_imports --descriptor_set_out writes them), finding
// imports in importPaths, then beside each file. A file that does not
// compile is an error naming the file and line.
func LoadSchema(ctx context.Context, paths, importPaths []string) (*Schema, error) {
	s := EmptySchema()
	var sources []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, badSchema("--proto %s: %v", p, err)
		}
		if isDescriptorSet(p, data) {
			set, err := UnmarshalSchema(data)
			if err != nil {
				return nil, fmt.Errorf("--proto %s: %w", p, err)
			}
			if err := s.Merge(set); err != nil {
				return nil, fmt.Errorf("--proto %s: %w", p, err)
			}
			continue
		}
		sources = append(sources, p)
	}
	if len(sources) == 0 {
		return s, nil
	}
	compiled, err := compileProtos(ctx, sources, importPaths)
	if err != nil {
		return nil, err
	}
	if err := s.Merge(compiled); err != nil {
		return nil, err
	}
	return s, nil
}

// isDescriptorSet tells a FileDescriptorSet from .proto source: by its
// extension, else by not being text.
func isDescriptorSet(path string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".proto":
		return false
	case ".pb", ".desc", ".binpb", ".protoset", ".fds":
		return true
	}
	return !utf8.Valid(data) || slices.Contains(data, 0)
}

// compileProtos compiles source files. Each file is named relative to the
// first import path that holds it; a file under none of them adds its own
// directory to the import paths, as protoc's default -I. does for a file
// in the working directory.
func compileProtos(ctx context.Context, sources, importPaths []string) (*Schema, error) {
	paths := slices.Clone(importPaths)
	names := make([]string, 0, len(sources))
	for _, src := range sources {
		name := ""
		for _, ip := range paths {
			if rel, err := filepath.Rel(ip, src); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
				name = filepath.ToSlash(rel)
				break
			}
		}
		if name == "" {
			dir := filepath.Dir(src)
			paths = append(paths, dir)
			name = filepath.Base(src)
		}
		names = append(names, name)
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: paths}),
	}
	compiled, err := c.Compile(ctx, names...)
	if err != nil {
		return nil, badSchema("--proto: %v", err)
	}
	files := new(protoregistry.Files)
	if err := registerAll(files, compiled); err != nil {
		return nil, badSchema("%v", err)
	}
	return newSchema(files), nil
}

// registerAll adds files and, first, everything they import.
func registerAll(reg *protoregistry.Files, files linker.Files) error {
	var add func(f protoreflect.FileDescriptor) error
	add = func(f protoreflect.FileDescriptor) error {
		if _, err := reg.FindFileByPath(f.Path()); err == nil {
			return nil
		}
		imports := f.Imports()
		for i := range imports.Len() {
			if err := add(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return reg.RegisterFile(f)
	}
	for _, f := range files {
		if err := add(f); err != nil {
			return err
		}
	}
	return nil
}

// Messages names the message types the schema's own files define (nested
// ones too; not those of google/protobuf/*), sorted.
func (s *Schema) Messages() []string {
	var names []string
	var add func(ms protoreflect.MessageDescriptors)
	add = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if !m.IsMapEntry() {
				names = append(names, string(m.FullName()))
			}
			add(m.Messages())
		}
	}
	s.files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(f.Path(), "google/protobuf/") {
			add(f.Messages())
		}
		return true
	})
	slices.Sort(names)
	return names
}
