//! Helpers shared by the integration tests.

/// Parses an `xxd`-style dump ("00000010: 4c 54 ...") and checks each line's offset.
pub fn parse_dump(dump: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in dump.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (addr, hex) = line.split_once(':').expect("offset prefix");
        let addr = usize::from_str_radix(addr, 16).expect("hex offset");
        assert_eq!(addr, out.len(), "dump line offset");
        for byte in hex.split_whitespace() {
            out.push(u8::from_str_radix(byte, 16).expect("hex byte"));
        }
    }
    out
}

/// The page generator of the format doc's vectors: `page(seed)[i] = seed + ((i / 16) % 7)`.
pub fn vector_page(seed: u8, page_size: usize) -> Vec<u8> {
    (0..page_size)
        .map(|i| seed.wrapping_add(((i / 16) % 7) as u8))
        .collect()
}

/// Deterministic incompressible bytes (xorshift64*).
pub fn random_page(seed: u64, page_size: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..page_size)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

pub fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Recomputes and stores the file checksum of `bytes` after a test edited it, so that the
/// decoder's structural checks can be exercised without the checksum masking them. Follows
/// format §7.4 independently of the decoder's loop: header, per index entry the page header,
/// size prefix (current frames) and uncompressed page, then everything from the zero page
/// header up to the file checksum.
pub fn reseal(bytes: &mut [u8]) {
    let len = bytes.len();
    let page_size = be_u32(&bytes[8..12]);
    let entries = match ltx::decode_page_index(len as u64, bytes).unwrap() {
        ltx::PageIndexDecode::Complete(e) => e,
        other => panic!("{other:?}"),
    };
    let index_start = ltx::page_index_location(len as u64, bytes)
        .unwrap()
        .index_start as usize;
    let mut hashed = bytes[..100].to_vec();
    let mut page = vec![0u8; page_size as usize];
    for e in &entries {
        let frame = &bytes[e.offset as usize..e.offset as usize + e.size as usize];
        ltx::decode_page_frame(frame, page_size, &mut page).unwrap();
        let prefix = if frame[5] == 1 { 10 } else { 6 };
        hashed.extend_from_slice(&frame[..prefix]);
        hashed.extend_from_slice(&page);
    }
    hashed.extend_from_slice(&bytes[index_start - 6..len - 8]);
    let sum = ltx::CHECKSUM_FLAG | crc64_go_iso(&hashed);
    bytes[len - 8..].copy_from_slice(&sum.to_be_bytes());
}

/// CRC-64/GO-ISO straight from the `crc` crate's catalogue, independent of the crate's helpers.
pub fn crc64_go_iso(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO).checksum(data)
}

// Hex vectors A, B and C of the format doc §14.2, written by Go's ltx (HEAD and v0.5.1).

const VECTOR_A: &str = "
00000000: 4c 54 58 31 00 00 00 00 00 00 02 00 00 00 00 02
00000010: 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01
00000020: 00 00 01 8b cf e5 68 00 00 00 00 00 00 00 00 00
00000030: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00000040: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00000050: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00000060: 00 00 00 00 00 00 00 01 00 01 00 00 00 37 1b 10
00000070: 01 00 1b 11 01 00 1b 12 01 00 1b 13 01 00 1b 14
00000080: 01 00 1b 15 01 00 1b 16 01 00 0b 6f 00 1a 10 6e
00000090: 00 0f 70 00 ff 52 e0 13 13 13 13 13 13 13 13 13
000000a0: 13 13 13 13 13 00 00 00 02 00 01 00 00 00 37 1b
000000b0: 40 01 00 1b 41 01 00 1b 42 01 00 1b 43 01 00 1b
000000c0: 44 01 00 1b 45 01 00 1b 46 01 00 0b 6f 00 1a 40
000000d0: 6e 00 0f 70 00 ff 52 e0 43 43 43 43 43 43 43 43
000000e0: 43 43 43 43 43 43 00 00 00 00 00 00 01 64 41 02
000000f0: a5 01 41 00 00 00 00 00 00 00 00 08 90 d0 49 85
00000100: 55 55 55 55 b4 f5 1f 2b 39 5a 26 b8
";

const VECTOR_B: &str = "
00000000: 4c 54 58 31 00 00 00 02 00 00 02 00 00 00 00 03
00000010: 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 03
00000020: 00 00 01 8b cf e5 6f d0 00 00 00 00 00 00 00 00
00000030: 00 00 00 00 00 00 04 50 00 00 00 00 00 00 02 18
00000040: 00 00 00 01 00 00 00 02 00 00 00 00 00 00 00 00
00000050: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
00000060: 00 00 00 00 00 00 00 03 00 01 00 00 00 37 1b 33
00000070: 01 00 1b 34 01 00 1b 35 01 00 1b 36 01 00 1b 37
00000080: 01 00 1b 38 01 00 1b 39 01 00 0b 6f 00 1a 33 6e
00000090: 00 0f 70 00 ff 52 e0 36 36 36 36 36 36 36 36 36
000000a0: 36 36 36 36 36 00 00 00 00 00 00 03 64 41 00 00
000000b0: 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 ea
000000c0: 0e 1b 80 24 b3 4f 96
";

// Bytes 0x00..0x60 are those of vector B.
const VECTOR_C_FROM_0X60: &str = "
00000060: 00 00 00 00 00 00 00 03 00 00 04 22 4d 18 64 40
00000070: a7 37 00 00 00 1b 33 01 00 1b 34 01 00 1b 35 01
00000080: 00 1b 36 01 00 1b 37 01 00 1b 38 01 00 1b 39 01
00000090: 00 0b 6f 00 1a 33 6e 00 0f 70 00 ff 52 e0 36 36
000000a0: 36 36 36 36 36 36 36 36 36 36 36 36 00 00 00 00
000000b0: f3 ef 69 06 00 00 00 00 00 00 03 64 50 00 00 00
000000c0: 00 00 00 00 00 04 00 00 00 00 00 00 00 00 ad b1
000000d0: 87 03 b0 a3 2c bd
";

pub fn vector_a() -> Vec<u8> {
    parse_dump(VECTOR_A)
}

pub fn vector_b() -> Vec<u8> {
    parse_dump(VECTOR_B)
}

pub fn vector_c() -> Vec<u8> {
    let mut bytes = vector_b()[..0x60].to_vec();
    let dump: String = VECTOR_C_FROM_0X60
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // Re-base the offsets so parse_dump's running offset check starts at 0.
            let (addr, rest) = l.trim().split_once(':').unwrap();
            let addr = usize::from_str_radix(addr, 16).unwrap() - 0x60;
            format!("{addr:08x}:{rest}\n")
        })
        .collect();
    bytes.extend(parse_dump(&dump));
    bytes
}
