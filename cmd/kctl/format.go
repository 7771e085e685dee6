package main

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// formatBytesMax bounds a -f format string.
const formatBytesMax = 4096

// formatPart is one piece of a compiled -f format: literal text, or a
// directive letter naming a record field.
type formatPart struct {
	literal   string
	directive byte // 0 for literal text
}

// recordFormat prints records as a -f format says: %t topic, %p partition,
// %o offset, %k key, %v value, %T timestamp (Unix milliseconds), %% a
// percent sign; \n, \t and \\ are escapes. A newline ends each record unless
// the format already ends with one.
type recordFormat struct {
	parts []formatPart
}

// parseFormat compiles a -f format, rejecting unknown directives and
// escapes so that a typo is an error rather than odd output.
func parseFormat(text string) (recordFormat, error) {
	if len(text) > formatBytesMax {
		return recordFormat{}, fmt.Errorf("format is %d bytes; at most %d", len(text), formatBytesMax)
	}
	var f recordFormat
	var literal []byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '%' && c != '\\' {
			literal = append(literal, c)
			continue
		}
		if i+1 == len(text) {
			return recordFormat{}, fmt.Errorf("format ends with a lone %q", c)
		}
		i++
		next := text[i]
		if c == '\\' {
			escaped, ok := map[byte]byte{'n': '\n', 't': '\t', '\\': '\\'}[next]
			if !ok {
				return recordFormat{}, fmt.Errorf("unknown escape \\%c (want \\n, \\t or \\\\)", next)
			}
			literal = append(literal, escaped)
			continue
		}
		switch next {
		case '%':
			literal = append(literal, '%')
		case 't', 'p', 'o', 'k', 'v', 'T':
			f.parts = appendLiteral(f.parts, literal)
			literal = nil
			f.parts = append(f.parts, formatPart{directive: next})
		default:
			return recordFormat{}, fmt.Errorf("unknown directive %%%c (want %%t %%p %%o %%k %%v %%T or %%%%)", next)
		}
	}
	if len(literal) == 0 || literal[len(literal)-1] != '\n' {
		literal = append(literal, '\n')
	}
	f.parts = appendLiteral(f.parts, literal)
	return f, nil
}

func appendLiteral(parts []formatPart, literal []byte) []formatPart {
	if len(literal) == 0 {
		return parts
	}
	return append(parts, formatPart{literal: string(literal)})
}

// append writes one record into dst.
func (f recordFormat) append(dst []byte, r *kgo.Record) []byte {
	for _, part := range f.parts {
		switch part.directive {
		case 0:
			dst = append(dst, part.literal...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		default:
			panic(fmt.Sprintf("format part with unknown directive %q survived parseFormat", part.directive))
		}
	}
	return dst
}
