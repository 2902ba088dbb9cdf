package engine

import "testing"

// Over many refills a session held back by a global limit takes its quota
// exactly, whatever the quota's remainder in blocks: 200 torrents under
// 100 MiB/s each get 52 KiB a refill, three blocks and a quarter.
func TestShareTakesItsQuotaOverRefills(t *testing.T) {
	var b globalBucket
	const quota = 52 << 10
	var sh share
	var taken int64
	const epochs = 100
	for range epochs {
		b.quota.Store(quota)
		b.epoch.Add(1)
		for !sh.over(&b) {
			sh.taken += blockSize // share.take without the bucket
			taken += blockSize
		}
	}
	if want := int64(epochs * quota); taken < want-blockSize || taken > want+blockSize {
		t.Fatalf("took %d bytes over %d refills of a %d-byte quota, want %d within a block", taken, epochs, quota, want)
	}
}
