package sim

import (
	"context"
	"log/slog"
	"strconv"
)

// logHandler is the slog.Handler of a node's Env.Log. It writes one line per
// record to the scheduler's trace writer, stamped with virtual time and the
// node's name and incarnation, and ignores slog's own wall-clock timestamp.
// Log lines are not part of the trace hash, so that turning the trace writer
// on or off cannot change TraceHash.
type logHandler struct {
	node   *Node
	attrs  []slog.Attr
	prefix string // group prefix for attribute keys, "a.b."
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool {
	return h.node.s.traceOut != nil
}

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	s := h.node.s
	if s.traceOut == nil {
		return nil
	}
	b := make([]byte, 0, 128)
	b = append(b, "    log t="...)
	b = strconv.AppendInt(b, int64(s.now), 10)
	b = append(b, ' ')
	b = append(b, h.node.name...)
	b = append(b, '/')
	b = strconv.AppendUint(b, h.node.incarnation, 10)
	b = append(b, ' ')
	b = append(b, r.Level.String()...)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, r.Message)
	for _, a := range h.attrs {
		b = appendAttr(b, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, h.prefix, a)
		return true
	})
	b = append(b, '\n')
	_, err := s.traceOut.Write(b)
	return err
}

func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, inner := range a.Value.Group() {
			b = appendAttr(b, prefix+a.Key+".", inner)
		}
		return b
	}
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, a.Key...)
	b = append(b, '=')
	return strconv.AppendQuote(b, a.Value.String())
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	copied := &logHandler{node: h.node, prefix: h.prefix}
	copied.attrs = append(copied.attrs, h.attrs...)
	for _, a := range attrs {
		a.Key = h.prefix + a.Key
		copied.attrs = append(copied.attrs, a)
	}
	return copied
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	copied := &logHandler{node: h.node, attrs: h.attrs, prefix: h.prefix + name + "."}
	return copied
}
