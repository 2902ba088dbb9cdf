module gotorrentserver

go 1.26

require github.com/cristalhq/bencode v0.4.0

require github.com/bits-and-blooms/bitset v1.29.0 // indirect
