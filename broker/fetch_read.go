package broker

// readForFetch is partition.read for the consume path, reading into a
// response frame that the connection reuses. It differs in two ways that
// matter once the frame is reused: after the first batch it reads only
// batches that fit the budget (storage.Log.ReadWithin), so a batch that
// cannot be sent is never read; and the buffer it returns keeps every
// byte of capacity it grew, so the next fetch on the connection needs no
// allocation. The checks on what it hands out are partition.read's.
func (p *partition) readForFetch(offset int64, maxBytes int, minOneBatch bool, buf []byte) ([]byte, error) {
	if p.offline != nil {
		return buf, p.offlineError()
	}
	end := p.highWatermark()
	start := len(buf)
	next := offset
	for next < end {
		budget := maxBytes - (len(buf) - start)
		first := minOneBatch && len(buf) == start
		if budget <= 0 && !first {
			break
		}
		before := len(buf)
		var data []byte
		var err error
		if first {
			data, err = p.log.Read(next, max(budget, 0), end, buf)
		} else {
			data, err = p.log.ReadWithin(next, budget, end, buf)
		}
		if err != nil {
			return data[:start], err
		}
		if len(data) == before {
			break
		}
		next, err = p.checkBatches(data[before:], offset, next)
		if err != nil {
			return data[:start], err
		}
		buf = data
	}
	return buf, nil
}
