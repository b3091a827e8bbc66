"""Cross-source deduplication at scale: ingest throughput and per-item dedupe cost with 10k,
100k and 1M stored items, through the real store (`Store.ingest`: fingerprints, blocking keys,
the `dedupe_item_keys` index lookup, `dedupe.compare`, the inserts), on synthetic
Indonesian-government-news items with a known share of duplicates.

    python bench/dedupe_scale.py --quick                 # sizes 2,000 and 20,000: a smoke run
    python bench/dedupe_scale.py                         # 10k, 100k, 1M (the 1M build: long)
    python bench/dedupe_scale.py --sizes 100000 --new 5000 --json /tmp/dedupe-scale.json

For each size N: build a database of N items once (cached under --workdir as
`build-N.db` with `build-N.json`, reused when the generator version, seed and size match),
ingesting the synthetic timeline from an empty file in batches through one long-lived `Store`
(the build rate is itself a throughput figure); then copy it and ingest --new NEW items (the
next items of the same timeline, same duplicate share) into the copy through a freshly opened
`Store` (a cron run's situation: the in-memory fingerprint cache and the tokenizer's caches
start empty; with --warmup W, W items are ingested untimed first by the same store and
workers, which is the steady state of a long-running `serve`). Timed: only
the `Store.ingest` calls (wall and CPU); the generator runs before the clock starts.

Afterwards, outside the timing: the share of the new duplicates that ended in their original's
story (recall on the synthetic set), the share of new non-duplicates whose story holds an item
of another synthetic story (false groups), the file size (database + WAL, right after the
ingest) and the size of the dedupe index and word counts (`dbstat`). Then, unless
--no-candidates, how many stored items each new item was compared with: the same ingest again
into a second copy, untimed, with `dedupe.compare` wrapped in this process to count its calls.

The generator (deterministic per item index, so the timeline after N items can be made without
making the first N): about 1,500 items a day (1M items are about 22 months), 300 sources of
uneven activity, one source per ingest call with 20-50 consecutive items of the timeline.
An item is a topic (14, Zipf-weighted) with its own words, a lede naming an agency, a
kelurahan, a kecamatan, a count and the date "(d/m)", then sentences of function words,
general government-news words, topic words and the article's own names and numbers, each
vocabulary drawn with Zipf-like weights (common words are common; unrelated items of one topic
share words but not word pairs). 27% of the items are duplicates: a copy of an earlier item of
another source published 20 min to 3 days before (most within a day), with an edited title
(words swapped, dropped or added, an agency prefix, a synonym verb) and an edited text (the
lede rewritten from the same facts, a sentence dropped, sometimes abridged). A copy may be made
of a copy; all copies of one original are one synthetic story.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aggregator import dedupe  # noqa: E402
from aggregator.normalize.keys import content_hash  # noqa: E402
from aggregator.store import Store  # noqa: E402
from aggregator.types import DedupeSettings, Item  # noqa: E402

GEN_VERSION = 2  # bump when the generator changes: cached databases are rebuilt
PER_DAY = 1500
DUP_SHARE = 0.27
N_SOURCES = 300
T0 = datetime(2024, 11, 1, tzinfo=UTC)
STEP = timedelta(seconds=86400 / PER_DAY)
WIB = timedelta(hours=7)

# --- vocabulary (each list in rank order: the first words are the most frequent) ----------

def _vocab(text: str) -> list[str]:
    """Whitespace-separated entries; "_" joins the words of one entry."""
    return [w.replace("_", " ") for w in text.split()]


FUNCTION = _vocab("""yang di dan dari untuk dengan ini dalam pada akan ke juga itu
oleh tersebut telah para bagi serta karena agar sebagai kepada saat hingga sudah masih lebih
ada adalah setelah bisa tidak atau antara melalui terhadap bahwa namun sehingga selain mulai
baik sejak yaitu tiap""")

GENERAL = _vocab("""warga masyarakat kegiatan pelayanan program
petugas layanan wilayah tahun pelaksanaan peningkatan pembangunan mengatakan menjelaskan
kerja sosialisasi koordinasi bantuan upaya lingkungan fasilitas data informasi publik
menyampaikan berharap lokasi sekitar titik anggaran pengawasan penanganan rapat kebijakan
sarana prasarana terpadu digital aplikasi umum daerah nasional kualitas target capaian
realisasi evaluasi monitoring hasil dukungan partisipasi kolaborasi sinergi komitmen pimpinan
jajaran aparatur pegawai tim satgas posko unit dokumen persyaratan pendaftaran pengajuan
penyerahan penghargaan apresiasi peresmian kunjungan peninjauan meninjau mengimbau menegaskan
menambahkan mengungkapkan menggelar melaksanakan menyerahkan meresmikan memberikan membantu
meningkatkan memastikan menyiapkan mengajak mendorong melakukan mengikuti diikuti dihadiri
digelar dilaksanakan diharapkan berlangsung tercatat mencapai sebanyak sejumlah total rupiah
miliar juta persen orang paket pukul wib pagi siang sore malam pekan bulan tokoh rt_rw
kader relawan komunitas mitra swasta perusahaan kemitraan forum dialog diskusi pembinaan
pelatihan pendampingan penyuluhan edukasi kesadaran keselamatan kenyamanan kebersihan
keamanan ketertiban kesejahteraan pemberdayaan keterbukaan transparansi akuntabilitas
inovasi teknologi sistem mekanisme prosedur standar regulasi aturan peraturan instruksi
surat edaran jadwal tahap tahapan awal akhir lanjutan berikutnya sebelumnya selanjutnya
terakhir pertama kedua ketiga sekaligus langsung segera rutin berkala berkelanjutan optimal
maksimal efektif efisien cepat tepat mudah gratis terbuka khusus utama penting strategis
prioritas nyata positif luas besar kecil tinggi rendah meningkat menurun bertambah berkurang
signifikan stabil aman lancar kondusif tertib bersih sehat produktif kreatif mandiri
terintegrasi menyeluruh merata intensif serentak bertahap""")

TOPICS: dict[str, list[str]] = {k: _vocab(v) for k, v in {
    "kesehatan": """puskesmas vaksinasi imunisasi posyandu balita stunting gizi dokter bidan
        pasien rumah_sakit pemeriksaan obat demam_berdarah fogging jentik lansia ibu_hamil bpjs
        klinik tensi kesehatan vaksin dosis penyakit medis ambulans tenaga_kesehatan
        sanitasi""",
    "air": """genangan banjir pompa saluran kali sungai tanggul pengerukan lumpur hujan
        drainase debit pintu_air waduk normalisasi sampah rob air surut tinggi_muka_air
        pompa_mobile sumur_resapan turap bantaran gorong-gorong luapan curah_hujan siaga
        embung""",
    "pendidikan": """sekolah siswa guru murid kelas ujian beasiswa ppdb kurikulum sd smp sma
        madrasah perpustakaan literasi pelajar kampus mahasiswa pendidikan belajar mengajar
        rapor seragam buku prestasi olimpiade asesmen tenaga_pendidik orang_tua""",
    "jalan": """jalan trotoar jembatan perbaikan pengaspalan betonisasi proyek kontraktor
        lampu penerangan halte gedung renovasi rehabilitasi konstruksi aspal berlubang
        pelebaran fisik pekerjaan material alat_berat pembangunan_fisik saluran_tepi
        marka rambu pagar""",
    "ekonomi": """umkm pelaku_usaha pasar pedagang bazar produk koperasi harga sembako beras
        cabai minyak_goreng inflasi operasi_pasar investasi pajak retribusi pendapatan
        ekonomi kios modal pembeli penjualan omzet ekspor pameran kerajinan kuliner
        wirausaha""",
    "lingkungan": """sampah kerja_bakti bank_sampah penghijauan pohon bibit taman ruang_terbuka
        limbah daur_ulang polusi udara emisi uji_emisi tanaman kompos plastik lingkungan_hidup
        pemilahan tps tpst angkutan_sampah kebersihan_lingkungan resapan hutan_kota mangrove
        pencemaran""",
    "transportasi": """transjakarta bus angkot lalu_lintas kemacetan parkir rekayasa dishub
        terminal stasiun mrt lrt ojek kendaraan uji_kir penumpang rute armada jalur trayek
        pengendara sepeda_motor pejalan_kaki simpang ganjil_genap tarif integrasi mikrotrans
        jaklingko""",
    "keamanan": """kebakaran damkar api korsleting mobil_pemadam evakuasi korban tawuran razia
        satpol_pp penertiban bangunan_liar pkl ketertiban siskamling pemadam kerugian
        penyebab hangus rumah_warga asap personel patroli pengamanan cctv kriminalitas
        gabungan""",
    "sosial": """bansos kjp kartu_lansia disabilitas panti anak_yatim santunan pmks dtks
        penerima sembako bedah_rumah keluarga_miskin bantuan_sosial penyaluran kpm
        pendataan verifikasi rumah_singgah tunawisma pengemis rehabilitasi_sosial makanan
        dapur_umum sosial""",
    "kependudukan": """ktp kk akta_kelahiran dukcapil adminduk perekaman e-ktp jemput_bola
        layanan_keliling kependudukan identitas kartu_identitas_anak pindah_datang
        pencatatan nik blangko biometrik dokumen_kependudukan akta_kematian
        penduduk""",
    "pemerintahan": """musrenbang apbd dprd rapat_paripurna pelantikan mutasi asn pns
        reformasi_birokrasi zona_integritas wbk inspektorat audit rancangan perda
        pengadaan lelang kinerja pejabat jabatan sumpah anggaran_daerah serapan
        pengawasan_internal laporan opd skpd""",
    "budaya": """lomba festival turnamen juara piala pawai betawi seni budaya tari ondel-ondel
        hut perayaan upacara kemerdekaan peserta panggung pentas musik sanggar tradisi
        kostum karnaval atlet pertandingan sepak_bola""",
    "keagamaan": """masjid musala ramadan idul_fitri kurban hewan_kurban zakat takbiran mudik
        natal gereja ibadah umat doa pengajian santri pesantren khotbah tarawih buka_puasa
        takjil sapi kambing pemotongan""",
    "pangan": """petani panen pupuk benih nelayan ikan budidaya hidroponik urban_farming
        ketahanan_pangan ternak sapi kambing lahan sayuran padi bibit_ikan kolam
        pertanian perikanan kelompok_tani hasil_panen irigasi gabah cabai_rawit""",
}.items()}
TOPIC_NAMES = list(TOPICS)
TOPIC_AGENCY = {
    "kesehatan": ["Suku Dinas Kesehatan", "Dinas Kesehatan", "Puskesmas Kecamatan"],
    "air": ["Dinas Sumber Daya Air", "Suku Dinas Sumber Daya Air", "BPBD"],
    "pendidikan": ["Dinas Pendidikan", "Suku Dinas Pendidikan Wilayah I", "Kantor Kemenag"],
    "jalan": ["Dinas Bina Marga", "Suku Dinas Bina Marga", "Dinas PUPR"],
    "ekonomi": ["Dinas Koperasi dan UKM", "Dinas PPKUKM", "Perumda Pasar Jaya"],
    "lingkungan": ["Dinas Lingkungan Hidup", "Suku Dinas Lingkungan Hidup", "DLH"],
    "transportasi": ["Dinas Perhubungan", "Suku Dinas Perhubungan", "Dishub"],
    "keamanan": ["Satpol PP", "Dinas Gulkarmat", "Suku Dinas Gulkarmat", "Polsek"],
    "sosial": ["Dinas Sosial", "Suku Dinas Sosial", "Baznas Bazis"],
    "kependudukan": ["Dinas Dukcapil", "Suku Dinas Dukcapil", "Disdukcapil"],
    "pemerintahan": ["Pemprov DKI Jakarta", "Pemkot", "Bappeda", "Inspektorat"],
    "budaya": ["Dinas Kebudayaan", "Dinas Pemuda dan Olahraga", "Suku Dinas Kebudayaan"],
    "keagamaan": ["Biro Dikmental", "Kantor Kemenag", "Baznas Bazis"],
    "pangan": ["Dinas KPKP", "Suku Dinas KPKP", "Dinas Pertanian"],
}
VERBS = [  # (title form, text form, synonym title form, passive title form)
    ("Gelar", "menggelar", "Adakan", "Digelar"), ("Resmikan", "meresmikan", "Buka", "Diresmikan"),
    ("Tinjau", "meninjau", "Cek", "Ditinjau"), ("Salurkan", "menyalurkan", "Bagikan",
                                                  "Disalurkan"),
    ("Tingkatkan", "meningkatkan", "Perkuat", "Ditingkatkan"),
    ("Percepat", "mempercepat", "Kebut", "Dipercepat"),
    ("Siapkan", "menyiapkan", "Persiapkan", "Disiapkan"),
    ("Tertibkan", "menertibkan", "Tata", "Ditertibkan"),
    ("Perbaiki", "memperbaiki", "Benahi", "Diperbaiki"), ("Latih", "melatih", "Bekali", "Dilatih"),
    ("Sosialisasikan", "menyosialisasikan", "Kenalkan", "Disosialisasikan"),
    ("Luncurkan", "meluncurkan", "Rilis", "Diluncurkan"), ("Imbau", "mengimbau", "Ajak", "Diimbau"),
    ("Evaluasi", "mengevaluasi", "Kaji", "Dievaluasi"),
    ("Optimalkan", "mengoptimalkan", "Maksimalkan", "Dioptimalkan"),
    ("Kerahkan", "mengerahkan", "Turunkan", "Dikerahkan"),
    ("Bersihkan", "membersihkan", "Bersihkan", "Dibersihkan"),
    ("Bangun", "membangun", "Dirikan", "Dibangun"),
]
UNITS = ["warga", "peserta", "siswa", "lansia", "pedagang", "personel", "petugas", "keluarga",
         "paket", "unit", "titik", "balita", "pelaku usaha", "penerima", "rumah"]
REAL_PLACES = _vocab("""Menteng Cikini Gambir Tanah_Abang Kemayoran Senen Johar_Baru Cempaka_Putih
Sawah_Besar Kebon_Kosong Kampung_Rawa Tambora Cengkareng Kalideres Grogol Kebon_Jeruk
Palmerah Kembangan Taman_Sari Tebet Setiabudi Mampang Pancoran Pasar_Minggu Jagakarsa
Cilandak Kebayoran Pesanggrahan Cakung Duren_Sawit Jatinegara Kramat_Jati Makasar Matraman
Pulogadung Ciracas Cipayung Pasar_Rebo Koja Cilincing Kelapa_Gading Pademangan Penjaringan
Tanjung_Priok Ancol Sunter Rawamangun Cawang Cililitan Kalibata Bintaro Ragunan Cipete Kemang
Senayan Petamburan Slipi Kemanggisan Duri_Kepa Meruya Joglo Srengseng Kapuk Pluit Marunda
Semper Rorotan Pegangsaan Galur Utan_Kayu Kayu_Putih Pisangan Balekambang Cibubur Munjul
Lubang_Buaya Halim Pinang_Ranti Bambu_Apus Ceger Susukan Gedong Rambutan Kampung_Melayu
Bukit_Duri Manggarai Guntur Karet Kuningan Kuningan_Timur Pela_Mampang Bangka Tegal_Parang
Cipulir Grogol_Utara Ulujami Petukangan Lebak_Bulus Pondok_Labu Gandaria Cipedak Ciganjur
Lenteng_Agung Tanjung_Barat Pejaten Jati_Padang Kebagusan Pasar_Baru Gunung_Sahari Mangga_Dua
Krukut Maphar Tangki Glodok Pinangsia Roa_Malaka Pekojan Jembatan_Lima Angke Jelambar
Tomang Wijaya_Kusuma Kedoya Sukabumi_Utara Kalianyar Krendang Duri_Utara Bojong_Indah
Cengkareng_Timur Tegal_Alur Pegadungan Semanan Rawa_Buaya Kamal Warakas Papanggo Sungai_Bambu
Rawa_Badak Tugu Lagoa Sukapura Kalibaru Bandung Bogor Depok Bekasi Tangerang Semarang
Surabaya Denpasar Medan Makassar Yogyakarta Solo Malang Cirebon Sukabumi Garut Tasikmalaya
Purwakarta Karawang Banyumas Cilacap Kudus Pati Magelang Klaten Sleman Bantul Gianyar Badung
Tabanan Buleleng Cianjur Subang Indramayu Majalengka Kuningan_Jabar Ciamis Pangandaran""")
_PRE = "Suka Mekar Karang Sido Sumber Tanjung Ci Bojong Pasir Rawa Pondok Jati Tegal Banjar Mulya"
_SUF = "maju jaya sari mulya rejo asri makmur baru indah wangi harja laksana agung raya rahayu"
PLACES = REAL_PLACES + [
    a + b for a, b in itertools.product(_PRE.split(), _SUF.split())]
STREETS = _vocab("""Kramat_Raya Gunung_Sahari Sudirman Thamrin Daan_Mogot Panjang Raya_Bogor Pemuda
Pramuka Matraman_Raya Kyai_Tapa Hayam_Wuruk Gajah_Mada Casablanca Rasuna_Said Gatot_Subroto
Fatmawati Ciledug_Raya Pahlawan Diponegoro Ahmad_Yani Otista Dewi_Sartika Kalimalang
Pemuda_Rawamangun Letjen_Suprapto Pasar_Minggu_Raya Warung_Buncit Kebon_Sirih Salemba_Raya
Cikini_Raya Tanjung_Duren Kemanggisan_Raya Bekasi_Raya Cilincing_Raya Yos_Sudarso
Perintis_Kemerdekaan Pulo_Gebang Radin_Inten Raya_Kalimalang""")
FIRST = _vocab("""Ahmad Budi Siti Dewi Rudi Agus Sri Hendra Yusuf Rina Wahyu Dedi Joko Eko Fitri Nur
Lilis Asep Ujang Made Ketut Nyoman Putu Andi Rahmat Hasan Ismail Yanti Teguh Bambang Dian
Ratna Irwan Fajar Indra Maya Novi Rizky Taufik Wawan Yuli Zainal Heru Sutrisno Mulyadi Slamet
Endang Tuti Aris Arief Anwar Dhany Rismasari Benny Mohamad Ali""")
LAST = _vocab("""Santoso Wijaya Saputra Hidayat Kurniawan Setiawan Susanto Pratama Nugroho Siregar
Nasution Lubis Harahap Simanjuntak Wibowo Gunawan Prasetyo Rahman Hakim Sukma Purnomo
Hartono Suryadi Sembiring Tanjung Manurung Sinaga Situmorang Halim Effendi Ramadhan
Firmansyah Syahputra Utomo Permana Maulana Hermawan Fauzi Aziz Iskandar""")
ROLES = ["Kepala", "Camat", "Lurah", "Kasudin", "Sekretaris", "Kepala Bidang", "Koordinator",
         "Ketua", "Kepala Seksi", "Wali Kota", "Kepala Puskesmas", "Plt Kepala"]
CITIES = ["Jakarta", "Jakarta", "Jakarta", "Bandung", "Bogor", "Semarang", "Denpasar",
          "Surabaya", "Depok", "Bekasi"]
DAYS = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
PREFIXES = ["Pemprov DKI:", "Sudin Kominfotik Jakpus -", "Pemkot Jaksel:", "Dinkes DKI:",
            "Humas Pemkot Bandung -", "Diskominfo Jabar:", "Pemkab Bogor:", "Beritajakarta.id -",
            "Pemprov Jateng:", "Kominfo:"]

# The long tail: common roots in their derived forms (meN-, di-, peN-an, ke-an, -an, -kan), in
# a fixed shuffled rank order. Real text draws half its content words from such a tail, which
# is what keeps unrelated articles apart (word Jaccard about 0.03-0.1, as real examples show).
ROOTS = _vocab("""ajar ajak akhir alih ambil amat angkut antar atur awas bahas bangun bantu
bayar beli bentuk beri bina buat buka bukti cari catat cegah cipta coba daftar datang dengar
didik dorong dukung gabung gerak guna hadap hadir hasil hitung hubung ikut isi jaga jamin
jelas jual kaji kelola kembang kenal kirim kumpul kurang lapor laku lanjut latih layan lengkap
lihat lindung lomba luas mampu masuk milik minta mudah nilai olah paham pakai pantau pasang
pelihara periksa pikir pilih pimpin pindah pulih rawat rencana rusak salur sedia selenggara
selesai serah siap simpan susun tambah tanggung tanam tata temu tentu terap terima tetap
tinggal tinjau tolong tuju tulis tunjuk ubah ukur ulang undang untung urus usul wajib wujud
kuat tampil tanya tawar tebang tembus tempuh tindak timbang tukar turun ungkap urai andal
angkat arah asuh balas banding bangkit batas bekal benah biaya bicara bimbing buang cakup
cermat dampak dasar dekat edar gali ganti genang gagas hambat hapus harap himpun hindar ingat
jangkau jawab jemput kawal kejar keluh kemas kendali kerah kunjung lacak landas langgar lepas
lestari libat lintas mukim muat nikmat padat padam pajang panggil papar pasok patuh pecah
pegang pendek percaya perintah pesan pinjam potong pusat putus rakit rangkai rasa rekam rekrut
resap rintis rombak ruang rumus sadar saing saji saring sasar sebar selamat seleksi sesuai sewa
sumbang suluh sorot tabung tagih takar tampung tanda tangkap tampak tegas tekan tempat tenaga
terang tertib timbul tingkat tunda tunggu tutup uji ulas unggul urut usaha wakil warna baca
tulis hitung ajar bagi bela beres bongkar cetak cicil curah dirikan endap gelar gusur hijau
hubung inap jahit jajak kabar kaji kalah karang keruk kikis lahir lantik
lebar lipat masak muda naik obat pandu pangkas
peras petik pikul pukul pupuk rebut retak rumput sapu sayang sekat semprot setor
siram sita sunting tabur tadah tambal tatap tebar teliti timbun
tingkat tonton tuang tumbuh ukir unduh unggah urug usir waris""")


def _men(root: str, prefix: str) -> str:
    """meN-/peN- with the usual assimilation (bangun -> membangun, tata -> menata)."""
    c = root[0]
    if c in "bfv":
        return prefix + "m" + root
    if c == "p":
        return prefix + "m" + root[1:]
    if c in "cdjz":
        return prefix + "n" + root
    if c == "t":
        return prefix + "n" + root[1:]
    if c == "s":
        return prefix + "ny" + root[1:]
    if c == "k":
        return prefix + "ng" + root[1:]
    if c in "aiueogh":
        return prefix + "ng" + root
    return prefix + root


def _tail() -> list[str]:
    forms = sorted({f for root in ROOTS for f in (
        root, _men(root, "me"), "di" + root, _men(root, "pe") + "an", "ke" + root + "an",
        root + "an", root + "kan", "ber" + root)})
    random.Random(20261126).shuffle(forms)
    return forms


TAIL = _tail()

_SYL = [c + v for c in "bcdghjklmnprstwy" for v in "aiueo"]


def _names(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(r.choice(_SYL) for _ in range(r.randint(2, 4))).capitalize())
    return sorted(out)


# People, streets, RW/RT and organisation names: the long tail real news has (tens of
# thousands of distinct words). Without it every "rare" word of the synthetic vocabulary is
# shared by hundreds of items, which no real portal's archive looks like.
NAMES = _names(100_000, 7)
CW_NAMES = list(itertools.accumulate(1 / (i + 10) for i in range(len(NAMES))))


def _cum(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1 / (r + 1) ** s for r in range(n)))


CW_FUNCTION = _cum(len(FUNCTION), 1.1)
CW_GENERAL = _cum(len(GENERAL), 0.8)
CW_TOPIC = {k: _cum(len(v), 0.9) for k, v in TOPICS.items()}
CW_TOPICS = _cum(len(TOPIC_NAMES), 0.6)
CW_PLACES = _cum(len(PLACES), 0.8)
CW_STREETS = _cum(len(STREETS), 0.8)
CW_SOURCES = _cum(N_SOURCES, 0.7)
CW_TAIL = _cum(len(TAIL), 0.5)
SLOT_KINDS = ("f", "g", "t", "x", "k", "e")
CW_SLOTS = list(itertools.accumulate((0.36, 0.08, 0.10, 0.26, 0.10, 0.10)))


# --- the synthetic timeline ---------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    id: str
    agency: str  # slug
    host: str
    views: bool


@dataclass(frozen=True)
class Article:
    index: int
    source: int
    published: datetime
    cluster: int  # the index of the original
    dup_of: int  # -1 for an original
    title: str
    sentences: tuple[str, ...]
    facts: tuple[Any, ...]  # what a rewritten lede keeps: see Synth._lede
    views: int | None


class Synth:
    """Item i of the timeline is a pure function of (seed, i): made from its own random
    generator, and from the article it copies (made the same way)."""

    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        r = random.Random(seed)
        self.sources = [Source(f"src-{k:03d}", f"agency-{k % 120:03d}",
                               f"{r.choice(['www', 'berita', 'portal'])}.site{k:03d}.go.id",
                               r.random() < 0.3) for k in range(N_SOURCES)]
        self.starts = [0]  # batch b covers items [starts[b], starts[b + 1])
        self.batch_source: list[int] = []
        self.memo: dict[int, Article] = {}

    # batches: one source, 20-50 consecutive items
    def _extend(self, upto: int) -> None:
        while self.starts[-1] <= upto:
            b = len(self.batch_source)
            r = random.Random((self.seed << 40) ^ (b * 2 + 1))
            self.batch_source.append(r.choices(range(N_SOURCES), cum_weights=CW_SOURCES)[0])
            self.starts.append(self.starts[-1] + r.randint(20, 50))

    def batch_of(self, i: int) -> int:
        self._extend(i)
        return bisect.bisect_right(self.starts, i) - 1

    def source_of(self, i: int) -> int:
        return self.batch_source[self.batch_of(i)]

    def batches(self, start: int, stop: int) -> list[tuple[int, int]]:
        """[start, stop) cut at batch boundaries (the first and last may be partial)."""
        self._extend(stop)
        out, i = [], start
        while i < stop:
            end = min(self.starts[self.batch_of(i) + 1], stop)
            out.append((i, end))
            i = end
        return out

    def article(self, i: int) -> Article:
        a = self.memo.get(i)
        if a is None:
            a = self._make(i)
            self.memo[i] = a
            if len(self.memo) > 20000:
                for k in sorted(self.memo)[:5000]:
                    del self.memo[k]
        return a

    def _make(self, i: int) -> Article:
        r = random.Random((self.seed << 40) ^ (i * 2))
        src = self.source_of(i)
        published = T0 + STEP * i
        views = int(r.lognormvariate(5.5, 1.2)) if self.sources[src].views else None
        if i > 0 and r.random() < DUP_SHARE:
            j = self._original(r, i, src)
            if j is not None:
                orig = self.article(j)
                title = _edit_title(r, orig.title)
                sentences = _edit_text(r, orig.sentences, orig.facts)
                return Article(i, src, published, orig.cluster, j, title, sentences,
                               orig.facts, views)
        title, sentences, facts = _original_article(r, published)
        return Article(i, src, published, i, -1, title, sentences, facts, views)

    def _original(self, r: random.Random, i: int, src: int) -> int | None:
        u = r.random()
        hours = (r.uniform(1 / 3, 24) if u < 0.6 else r.uniform(24, 48) if u < 0.9
                 else r.uniform(48, 72))
        j = i - max(1, round(hours * PER_DAY / 24))
        while j >= 0 and self.source_of(j) == src:
            j = self.starts[self.batch_of(j)] - 1
        return j if j >= 0 else None

    def item(self, a: Article) -> Item:
        paras = [a.sentences[k:k + 3] for k in range(0, len(a.sentences), 3)]
        content = "".join(f"<p>{escape(' '.join(p))}</p>" for p in paras)
        slug = "-".join(w.strip(":-.,").lower() for w in a.title.split()[:6] if w.strip(":-"))
        link = f"https://{self.sources[a.source].host}/berita/{slug}-{a.index}"
        return Item(source_id=self.sources[a.source].id, key="link:" + link, link=link,
                    title=a.title, summary="", content=content, author=None,
                    published=a.published, updated=None, dated_by="source", views=a.views,
                    categories=(), image=None, content_hash=content_hash(a.title, content))


def index_of(key_or_link: str) -> int:
    return int(key_or_link.rsplit("-", 1)[1])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


LOWER_IN_TITLES = {"di", "ke", "dan", "untuk", "bagi", "dari", "yang"}


def _title_case(words: list[str]) -> str:
    return " ".join(w if w[:1].isupper() or w[:1].isdigit() or w in LOWER_IN_TITLES
                    else w.capitalize() for w in words)


def _original_article(r: random.Random, published: datetime
                      ) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    topic = r.choices(TOPIC_NAMES, cum_weights=CW_TOPICS)[0]
    words, cw = TOPICS[topic], CW_TOPIC[topic]
    kel, kec = r.choices(PLACES, cum_weights=CW_PLACES, k=2)
    agency = r.choice(TOPIC_AGENCY[topic])
    if r.random() < 0.4:
        agency += " " + r.choice(["Jakarta Pusat", "Jakarta Barat", "Jakarta Timur", "DKI"])
    verb = r.randrange(len(VERBS))
    noun1, noun2 = r.choices(words, cum_weights=cw, k=2)
    while noun2 == noun1:
        noun2 = r.choices(words, cum_weights=cw)[0]
    count = r.choice([r.randint(2, 60), r.randint(50, 900), r.randint(1, 30) * 100])
    unit = r.choice(UNITS)
    local = published + WIB
    facts = (r.choice(CITIES), DAYS[local.weekday()], local.day, local.month, agency, verb,
             noun1, noun2, count, unit, kel, kec, topic)
    people = [f"{r.choice(FIRST)} {r.choices(NAMES, cum_weights=CW_NAMES)[0]}"
              for _ in range(r.randint(1, 2))]
    street = r.choice(STREETS) if r.random() < 0.5 else None
    numbers = [f"{r.randint(2, 400)} {r.choice(UNITS)}" for _ in range(r.randint(1, 3))]
    entities = [f"Kelurahan {kel}", f"kecamatan {kec}", *numbers,
                *([f"pukul {r.randint(7, 20):02d}.{r.choice(['00', '30'])} WIB"]
                  if r.random() < 0.5 else []),
                *([f"Jalan {street}"] if street else []), *people, noun1, noun2]
    keywords = r.choices(NAMES, cum_weights=CW_NAMES, k=6) + r.sample(TAIL, 4)
    # title: 6-12 words
    n_title = r.randint(6, 12)
    shape = r.randrange(3)
    if shape == 0:
        core = [VERBS[verb][0], noun1, noun2, "di", kel]
    elif shape == 1:
        core = [str(count), unit, kel, "Ikuti", noun1, noun2]
    else:
        core = [noun1, noun2, "di", kel, VERBS[verb][3]]
    core = " ".join(core).split()
    fill = list(dict.fromkeys(
        w.split()[0] for w in (*r.choices(words, cum_weights=cw, k=4),
                               *r.choices(TAIL, cum_weights=CW_TAIL, k=1),
                               *r.choices(keywords[:3], k=1),
                               *r.choices(GENERAL, cum_weights=CW_GENERAL, k=3))
        if w not in core))
    title_words = list(core)
    for w in fill[:max(n_title - len(core), 0)]:  # at the start, or before "di" and its place
        at = title_words.index("di") if "di" in title_words else len(title_words)
        title_words.insert(0 if r.random() < 0.3 else at, w)
    title = _title_case(title_words)
    # text: 80-250 words
    target = int(r.triangular(80, 250, 130))
    sentences = [_lede(r, facts, r.randrange(3))]
    n_words = len(sentences[0].split())
    quote = r.randrange(1, 4)
    while n_words < target:
        if len(sentences) == quote:
            s = (f"{r.choice(people)}, {r.choice(ROLES)} {agency}, mengatakan "
                 + _words(r, topic, entities, keywords, r.randint(8, 16)) + ".")
        else:
            s = _cap(_words(r, topic, entities, keywords, r.randint(9, 22))) + "."
        sentences.append(s)
        n_words += len(s.split())
    return title, tuple(sentences), facts


def _words(r: random.Random, topic: str, entities: list[str], keywords: list[str], n: int
           ) -> str:
    out = []
    for kind in r.choices(SLOT_KINDS, cum_weights=CW_SLOTS, k=n):
        if kind == "f":
            out.append(r.choices(FUNCTION, cum_weights=CW_FUNCTION)[0])
        elif kind == "g":
            out.append(r.choices(GENERAL, cum_weights=CW_GENERAL)[0])
        elif kind == "t":
            out.append(r.choices(TOPICS[topic], cum_weights=CW_TOPIC[topic])[0])
        elif kind == "x":
            out.append(r.choices(TAIL, cum_weights=CW_TAIL)[0])
        elif kind == "k":
            out.append(r.choice(keywords))
        else:
            out.append(r.choice(entities))
    return " ".join(out)


def _lede(r: random.Random, facts: tuple[Any, ...], shape: int) -> str:
    city, day, d, m, agency, verb, noun1, noun2, count, unit, kel, kec, _topic = facts
    v = VERBS[verb][1]
    if r.random() < 0.3:  # "di Kebon Kosong" rather than "di Kelurahan Kebon Kosong"
        kel = kel if r.random() < 0.5 else f"{kel}, {kec}"
        where = f"di {kel}"
    else:
        where = f"di Kelurahan {kel}, Kecamatan {kec}"
    filler = r.choice(["", "secara serentak ", "bersama warga ", "di tingkat kelurahan ",
                       "sebagai upaya pelayanan "])
    if shape == 0:
        return (f"{city}, {day} ({d}/{m}) - {agency} {v} {noun1} {noun2} {filler}bagi {count} "
                f"{unit} {where}.")
    if shape == 1:
        return (f"{agency} {v} {noun1} {noun2} {filler}{where}, {day} ({d}/{m}), yang diikuti "
                f"{count} {unit}.")
    return (f"Sebanyak {count} {unit} {where} mengikuti {noun1} {noun2} yang digelar {agency} "
            f"{filler}pada {day} ({d}/{m}).")


def _edit_title(r: random.Random, title: str) -> str:
    for prefix in PREFIXES:  # a copy of a copy gets its own prefix, not two
        if title.startswith(prefix + " "):
            title = title[len(prefix) + 1:]
            break
    words = title.split()
    for _ in range(r.randint(1, 3)):
        free = words.index("di") if "di" in words else len(words)  # "di" and its place stay
        op = r.randrange(4)
        if op == 0 and free > 2:  # swap two neighbours
            k = r.randrange(free - 1)
            words[k], words[k + 1] = words[k + 1], words[k]
        elif op == 1 and len(words) > 6 and free > 1:  # drop a word (not a number)
            k = r.randrange(free)
            if not words[k][0].isdigit():
                del words[k]
        elif op == 2:  # add a word
            w = r.choices(GENERAL, cum_weights=CW_GENERAL)[0].split()[0]
            words.insert(r.randint(0, free), w.capitalize())
        else:  # a synonym verb
            for k, w in enumerate(words):
                syn = next((v[2] for v in VERBS if v[0] == w), None)
                if syn:
                    words[k] = syn
                    break
    if r.random() < 0.4:
        words = [*r.choice(PREFIXES).split(), *words]
    return " ".join(words)


def _edit_text(r: random.Random, sentences: tuple[str, ...], facts: tuple[Any, ...]
               ) -> tuple[str, ...]:
    out = list(sentences)
    if r.random() < 0.9:  # the lede rewritten from the same facts
        out[0] = _lede(r, facts, r.randrange(3))
    if len(out) > 3 and r.random() < 0.7:  # a sentence dropped
        del out[r.randrange(1, len(out))]
    if len(out) > 6 and r.random() < 0.2:  # abridged
        out = out[:max(4, int(len(out) * 0.6))]
    return tuple(out)


# --- measuring ------------------------------------------------------------------------------

def file_mb(path: Path) -> float:
    total = 0
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        if p.exists():
            total += p.stat().st_size
    return total / 1e6


def keys_mb(path: Path) -> float | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            total = 0
            for name in ("dedupe_item_keys", "dedupe_item_keys_day", "dedupe_words",
                         # before migration 10
                         "dedupe_keys", "dedupe_keys_item", "dedupe_keys_old",
                         "dedupe_keys_old_item"):
                row = conn.execute("SELECT SUM(pgsize) FROM dbstat('main', 1) WHERE name=?",
                                   (name,)).fetchone()
                total += row[0] or 0
            return total / 1e6
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def entries(synth: Synth, start: int, stop: int, truth: array[int] | None = None
            ) -> list[tuple[Item, str, int]]:
    """The ingest entries of items [start, stop); `truth` gets (cluster, dup_of) of each."""
    out = []
    for i in range(start, stop):
        a = synth.article(i)
        out.append((synth.item(a), synth.sources[a.source].agency, 1))
        if truth is not None:
            truth.extend((a.cluster, a.dup_of))
    return out


def ingest_now(batch: list[tuple[Item, str, int]]) -> datetime:
    return batch[-1][0].published + timedelta(minutes=10)


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def library_hash() -> str:
    """What a cached database depends on besides the generator: the code that files items
    under their keys (a changed key function makes an old index useless)."""
    h = hashlib.sha1()
    for rel in ("aggregator/dedupe.py", "aggregator/store/__init__.py",
                "aggregator/store/grouping.py", "aggregator/store/schema.py",
                "aggregator/types.py"):
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "aggregator"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


LIBRARY, COMMIT = library_hash(), git_commit()  # at start-up: what was imported
REUSE = False  # --reuse


def bring_up_to_date(db: Path) -> None:
    """A reused build as the current code would have left it, once, untimed: its migrations
    applied, and the recent items' fingerprints kept (a build by code that kept none, or
    another `dedupe.PACK_VERSION`, has none; a steady-state store has them all)."""
    w0 = time.perf_counter()
    store = Store(db)
    made = store.fill_fingerprints()
    store.close()
    if made:
        print(f"[build] {db.name}: kept the fingerprints of {made:,} recent items "
              f"({time.perf_counter() - w0:.1f} s)", flush=True)


def build(synth: Synth, size: int, workdir: Path) -> dict[str, Any]:
    """The cached database of `size` items: built once, then reused (same generator, seed,
    size and library code)."""
    db = workdir / f"build-{size}.db"
    meta_path = workdir / f"build-{size}.json"
    want = {"gen_version": GEN_VERSION, "seed": synth.seed, "size": size,
            "library": LIBRARY}
    if db.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        same = [k for k, v in want.items() if meta.get(k) == v]
        if REUSE and len(same) >= len(want) - 1 and "library" not in same:
            print(f"[{size:,}] --reuse: the build's library code {meta.get('library')} is "
                  f"not the current {LIBRARY}: it is reused as it is", flush=True)
            same.append("library")
        if len(same) == len(want):
            print(f"[{size:,}] reusing {db} (built {meta['built_at']}: "
                  f"{meta['items_per_s']:,.0f} items/s)", flush=True)
            meta["reused"] = True
            bring_up_to_date(db)
            return meta
    remove_db(db)
    meta_path.unlink(missing_ok=True)
    print(f"[{size:,}] building {db} ...", flush=True)
    store = Store(db)
    store.configure_dedupe(DedupeSettings(), ())
    store.begin_group()  # as a poll writes: commits of Store.GROUP_ITEMS new items
    wall = cpu = gen = 0.0
    seg_wall = seg_cpu = 0.0
    seg_items = 0
    segments: list[dict[str, float]] = []
    step = max(size // 20, 1000)
    next_report = step
    truth = array("q")  # cluster, dup_of of item i at 2i, 2i + 1
    started = time.perf_counter()
    for start, stop in synth.batches(0, size):
        g0 = time.perf_counter()
        batch = entries(synth, start, stop, truth)
        gen += time.perf_counter() - g0
        w0, c0 = time.perf_counter(), time.process_time()
        store.ingest(synth.sources[synth.source_of(start)].id, batch, ingest_now(batch))
        dw, dc = time.perf_counter() - w0, time.process_time() - c0
        wall += dw
        cpu += dc
        seg_wall += dw
        seg_cpu += dc
        seg_items += stop - start
        if stop >= next_report or stop == size:
            segments.append({"upto": stop, "items_per_s": seg_items / seg_wall,
                             "cpu_ms_per_item": 1000 * seg_cpu / seg_items,
                             "process_sys_s": os.times().system})
            eta = (time.perf_counter() - started) / stop * (size - stop)
            print(f"[{size:,}] {stop:>9,} items  total {stop / wall:7,.0f} items/s  "
                  f"last {seg_items:,}: {seg_items / seg_wall:7,.0f} items/s "
                  f"({1000 * seg_cpu / seg_items:.3f} ms CPU/item)  gen {gen:.0f} s  "
                  f"db {file_mb(db):,.0f} MB  rss {max_rss_mb():,.0f} MB  eta {eta / 60:.1f} min",
                  flush=True)
            seg_wall = seg_cpu = 0.0
            seg_items = 0
            next_report += step
    c0 = time.perf_counter()
    store.end_group()
    store.close()
    close_s = time.perf_counter() - c0
    quality = evaluate(db, lambda i: (truth[2 * i], truth[2 * i + 1]), 0, size)
    meta = {**want, "built_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": COMMIT,
            "ingest_wall_s": wall, "ingest_cpu_s": cpu, "generate_s": gen,
            "close_s": close_s, "items_per_s": size / wall, "segments": segments,
            "db_mb": file_mb(db), "max_rss_mb": max_rss_mb(), "quality": quality,
            "reused": False}
    meta_path.write_text(json.dumps(meta, indent=1))
    print(f"[{size:,}] built: {size / wall:,.0f} items/s (ingest {wall:.1f} s wall, "
          f"{cpu:.1f} s CPU; generating {gen:.1f} s), {meta['db_mb']:,.0f} MB, "
          f"recall {quality['recall']:.4f}, false groups {quality['false_groups']:.4f}",
          flush=True)
    return meta


def evaluate(db: Path, truth: Callable[[int], tuple[int, int]], start: int, stop: int
             ) -> dict[str, Any]:
    """Ground truth vs stories for the items [start, stop) of the timeline. `truth(i)` is
    (cluster, dup_of) of item i."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        story_of: dict[int, str] = {}
        for link, story in conn.execute("SELECT link, story_id FROM items"):
            story_of[index_of(link)] = story
    finally:
        conn.close()
    members: dict[str, list[int]] = {}
    for i, story in story_of.items():
        members.setdefault(story, []).append(i)
    dups = grouped = originals = false_orig = false_dup = 0
    for i in range(start, stop):
        cluster, dup_of = truth(i)
        mixed = any(truth(m)[0] != cluster for m in members[story_of[i]])
        if dup_of >= 0:
            dups += 1
            grouped += story_of[i] == story_of[dup_of]
            false_dup += mixed
        else:
            originals += 1
            false_orig += mixed
    return {"items": stop - start, "duplicates": dups, "recall": grouped / max(dups, 1),
            "false_groups": false_orig / max(originals, 1),
            "dups_in_wrong_story": false_dup / max(dups, 1),
            "stories": len({story_of[i] for i in range(start, stop)}),
            "true_stories": len({truth(i)[0] for i in range(start, stop)})}


def synth_truth(synth: Synth) -> Callable[[int], tuple[int, int]]:
    cache: dict[int, tuple[int, int]] = {}

    def truth(i: int) -> tuple[int, int]:
        if i not in cache:
            a = synth.article(i)
            cache[i] = (a.cluster, a.dup_of)
        return cache[i]

    return truth


def count_compares(synth: Synth, size: int, prepared: list[tuple[str, list[Any]]],
                   workdir: Path) -> dict[str, float]:
    """How many comparisons each new item cost: the same ingest again, untimed, into a second
    copy, with `dedupe.compare` wrapped to count its calls (stored candidates and earlier items
    of the same batch). The library is not changed; only this process's module attribute."""
    db = workdir / f"count-{size}.db"
    remove_db(db)
    shutil.copyfile(workdir / f"build-{size}.db", db)
    original = dedupe.compare
    per_item: dict[int, list[int]] = {}

    def counting(a: dedupe.Probe, b: dedupe.Probe, settings: DedupeSettings,
                 figures: bool = True) -> Any:
        counts = per_item.setdefault(id(a.fp), [0, 0])
        counts[0 if b.item_id else 1] += 1
        return original(a, b, settings, figures)

    stored: list[int] = []
    in_batch: list[int] = []
    store = Store(db)
    store.configure_dedupe(DedupeSettings(), ())
    dedupe.compare = counting
    try:
        for scope, batch in prepared:
            per_item.clear()
            store.ingest(scope, batch, ingest_now(batch))
            found = list(per_item.values())
            found += [[0, 0]] * (len(batch) - len(found))  # items compared with nothing
            stored.extend(c[0] for c in found)
            in_batch.extend(c[1] for c in found)
    finally:
        dedupe.compare = original
        store.close()
        remove_db(db)
    stored.sort()
    return {"mean": statistics.fmean(stored), "p50": stored[len(stored) // 2],
            "p95": stored[int(len(stored) * 0.95)], "max": stored[-1],
            "batch_mean": statistics.fmean(in_batch)}


def pack_batch(texts: list[tuple[str, str, str, str]]) -> tuple[dict[str, bytes], float]:
    """What a parse worker sends with a new source's items (pipeline.parse_job). It gets
    (key, title, summary, content) of each: a real worker parses the items from the fetched
    bytes, and the items' own trip back is not part of ingesting."""
    c0 = time.process_time()
    packed = {key: dedupe.pack(dedupe.item_fingerprint(title, summary, content))
              for key, title, summary, content in texts}
    return packed, time.process_time() - c0  # the worker's CPU for this batch


def _pack_speed(texts: list[tuple[str, str, str, str]]) -> float:
    best = float("inf")
    for _ in range(3):
        c0 = time.perf_counter()
        pack_batch(texts)
        best = min(best, time.perf_counter() - c0)
    return 1e6 * best / len(texts)


def machine_speed(texts: list[tuple[str, str, str, str]]) -> float:
    """This machine's speed at the moment: µs per item to fingerprint and pack `texts` (the
    first 300 new items), best of 3, in a forked process (this one's caches stay as they
    were). The same work at every size and in every run, so two runs' rates compare fairly
    only when this is alike (a shared VM's speed moves by up to 40% within an hour)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(_pack_speed, texts).result()


def measure(synth: Synth, size: int, new: int, workdir: Path, with_candidates: bool,
            workers: int = 1, warmup: int = 0) -> dict[str, Any]:
    src = workdir / f"build-{size}.db"
    db = workdir / f"work-{size}.db"
    remove_db(db)
    t0 = time.perf_counter()
    shutil.copyfile(src, db)
    fd = os.open(db, os.O_RDONLY)  # written out now: the timed run's first checkpoint (an
    try:                           # fsync) would otherwise wait for the whole copy
        os.fsync(fd)
    finally:
        os.close(fd)
    copy_s = time.perf_counter() - t0
    timed = size + warmup  # the first timed item
    batches = synth.batches(timed, timed + new)
    g0 = time.perf_counter()
    prepared = [(synth.sources[synth.source_of(a)].id, entries(synth, a, b))
                for a, b in batches]
    gen_s = time.perf_counter() - g0
    sample = [(i.key, i.title, i.summary, i.content) for _, batch in prepared
              for i, _, _ in batch][:300]
    speed_before = machine_speed(sample)
    print(f"[{size:,}] copied in {copy_s:.1f} s; {new:,} new items in {len(batches)} batches "
          f"generated in {gen_s:.1f} s; ingesting ...", flush=True)
    settings = DedupeSettings()
    # as in a poll, the pool is started before the clock; it is forked, so that its CPU is
    # counted (RUSAGE_CHILDREN) when it is shut down
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) \
        if workers else None
    if pool is not None:
        list(pool.map(int, range(workers)))
    w0, c0 = time.perf_counter(), time.process_time()
    store = Store(db)
    store.configure_dedupe(settings, ())
    store.begin_group()  # as a poll writes: commits of Store.GROUP_ITEMS new items
    open_s = time.perf_counter() - w0
    open_cpu = time.process_time() - c0
    if warmup:  # untimed: a long-running process's caches (serve), not a fresh one's (cron)
        for a, b in synth.batches(size, timed):
            batch = entries(synth, a, b)
            texts = [(i.key, i.title, i.summary, i.content) for i, _, _ in batch]
            packed = pool.submit(pack_batch, texts).result()[0] if pool else None
            store.ingest(synth.sources[synth.source_of(a)].id, batch, ingest_now(batch),
                         fingerprints=packed)
        print(f"[{size:,}] warmed up with {warmup:,} items (untimed)", flush=True)
    per_item_ms: list[float] = []
    wall = cpu = 0.0
    thread0 = time.thread_time()  # this thread's own CPU: the part that is not in parallel
    marks: list[tuple[int, float, float]] = []  # cumulative (items, wall, cpu)
    done = 0
    times0 = os.times()
    started, started_cpu = time.perf_counter(), time.process_time()
    packs = [pool.submit(pack_batch, [(i.key, i.title, i.summary, i.content)
                                      for i, _, _ in batch])
             for _, batch in prepared] if pool else []
    wall += time.perf_counter() - started  # sending the items to the workers is ingesting
    cpu += time.process_time() - started_cpu
    for n, (scope, batch) in enumerate(prepared):
        w1, c1 = time.perf_counter(), time.process_time()
        store.ingest(scope, batch, ingest_now(batch),
                     fingerprints=packs[n].result()[0] if packs else None)
        dw, dc = time.perf_counter() - w1, time.process_time() - c1
        wall += dw
        cpu += dc
        done += len(batch)
        per_item_ms.extend([1000 * dw / len(batch)] * len(batch))
        marks.append((done, wall, cpu))
    w1, c1 = time.perf_counter(), time.process_time()
    store.end_group()  # the last commit is part of ingesting
    wall += time.perf_counter() - w1
    cpu += time.process_time() - c1
    thread_cpu = time.thread_time() - thread0
    marks[-1] = (done, wall, cpu)
    times1 = os.times()
    worker_cpu = sum(f.result()[1] for f in packs)
    if pool is not None:
        pool.shutdown()
    db_mb = file_mb(db)
    speed_after = machine_speed(sample)
    w2 = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - w2
    # the rate over the first and the last fifth: a cold fingerprint cache, then a warmer one
    fifth = new // 5
    first = next(m for m in marks if m[0] >= fifth)
    before_last = max((m for m in marks if m[0] <= new - fifth), key=lambda m: m[0])
    per_item_ms.sort()
    result: dict[str, Any] = {
        "size": size, "new": new, "warmup": warmup, "batches": len(batches), "copy_s": copy_s,
        "open_s": open_s, "open_cpu_s": open_cpu, "close_s": close_s,
        "ingest_wall_s": wall, "ingest_cpu_s": cpu, "items_per_s": new / wall,
        "cpu_items_per_s": new / cpu, "ms_per_item": 1000 * wall / new,
        "cpu_ms_per_item": 1000 * cpu / new,
        # the ingesting thread alone (without the checkpoint thread and the pool's threads)
        "thread_cpu_ms_per_item": 1000 * thread_cpu / new,
        "fingerprint_workers": workers, "worker_cpu_ms_per_item": 1000 * worker_cpu / new,
        "sys_ms_per_item": 1000 * (times1.system - times0.system) / new,  # kernel part of CPU
        "p50_ms_per_item": per_item_ms[len(per_item_ms) // 2],
        "p95_ms_per_item": per_item_ms[int(len(per_item_ms) * 0.95)],
        "first_fifth_items_per_s": first[0] / first[1],
        "last_fifth_items_per_s": (new - before_last[0]) / (wall - before_last[1]),
        "db_mb": db_mb, "db_mb_after_close": file_mb(db), "keys_mb": keys_mb(db),
        "max_rss_mb": max_rss_mb(),
        # µs per item to fingerprint 300 fixed items, before and after: the machine's speed
        "speed_us_before": speed_before, "speed_us_after": speed_after,
    }
    print(f"[{size:,}] ingest: {result['items_per_s']:,.0f} items/s wall "
          f"({result['ms_per_item']:.3f} ms/item; CPU {result['cpu_ms_per_item']:.3f} ms/item, "
          f"{result['sys_ms_per_item']:.3f} of it system, "
          f"{result['thread_cpu_ms_per_item']:.3f} in the ingesting thread; fingerprint "
          f"workers: {workers}, "
          f"{result['worker_cpu_ms_per_item']:.3f} ms/item), first fifth "
          f"{result['first_fifth_items_per_s']:,.0f}/s, last fifth "
          f"{result['last_fifth_items_per_s']:,.0f}/s; open {open_s:.2f} s, "
          f"close {close_s:.2f} s; machine speed {speed_before:.0f} / {speed_after:.0f} µs "
          f"per fingerprint before / after", flush=True)
    result["quality"] = evaluate(db, synth_truth(synth), timed, timed + new)
    q = result["quality"]
    print(f"[{size:,}] recall {q['recall']:.4f} ({q['duplicates']:,} duplicates), false groups "
          f"{q['false_groups']:.4f}, duplicates in a wrong story {q['dups_in_wrong_story']:.4f}",
          flush=True)
    if with_candidates:
        result["candidates"] = count_compares(synth, size, prepared, workdir)
        c = result["candidates"]
        print(f"[{size:,}] stored items compared per new item: mean {c['mean']:.1f}, p50 "
              f"{c['p50']}, p95 {c['p95']}, max {c['max']} (and {c['batch_mean']:.1f} of its "
              f"own batch)", flush=True)
    return result


def _content(text: str) -> list[str]:
    """Content words as the library sees them when it offers `words` and `content_words`
    (folded, stop words dropped, stemmed), else a plain lower-case split: this is a diagnostic
    of the generator and must not break when the library's internals change."""
    try:
        return [w for w in dedupe.content_words(dedupe.words(text)) if w[:1].isalnum()]
    except AttributeError:
        return [w for w in re.findall(r"\w+", text.lower()) if len(w) > 2]


def similarity_sample(synth: Synth, start: int, n: int = 300) -> dict[str, float]:
    """How alike unrelated items are: word Jaccard and word-pair overlap (over the shorter
    text's pairs) of random pairs of originals within a day of each other."""
    r = random.Random(7)
    js, ps = [], []
    for _ in range(n):
        i = start + r.randrange(PER_DAY * 3)
        j = i + r.randrange(1, PER_DAY)
        a, b = synth.article(i), synth.article(j)
        if a.cluster == b.cluster:
            continue
        wa, wb = _content(" ".join(a.sentences)), _content(" ".join(b.sentences))
        sa, sb = set(wa), set(wb)
        pa, pb = set(itertools.pairwise(wa)), set(itertools.pairwise(wb))
        js.append(len(sa & sb) / max(len(sa | sb), 1))
        ps.append(len(pa & pb) / max(min(len(pa), len(pb)), 1))
    js.sort()
    ps.sort()
    return {"text_jaccard_mean": statistics.fmean(js), "text_jaccard_p95": js[int(len(js) * .95)],
            "pair_overlap_mean": statistics.fmean(ps), "pair_overlap_p99": ps[int(len(ps) * .99)]}


def table(rows: list[dict[str, Any]], builds: dict[int, dict[str, Any]]) -> str:
    out = ["| size | build items/s | ingest items/s (new) | ms/item | db MB | keys MB "
           "| synthetic recall | false groups |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        keys = "-" if r["keys_mb"] is None else f"{r['keys_mb']:,.0f}"
        out.append(
            f"| {r['size']:,} | {builds[r['size']]['items_per_s']:,.0f} | "
            f"{r['items_per_s']:,.0f} | {r['ms_per_item']:.3f} | {r['db_mb']:,.0f} | {keys} | "
            f"{r['quality']['recall']:.4f} | {r['quality']['false_groups']:.4f} |")
    return "\n".join(out)


def detail(rows: list[dict[str, Any]], builds: dict[int, dict[str, Any]]) -> str:
    out = ["| size | build wall / CPU s | new: wall / CPU s | CPU ms/item (store / workers) "
           "| p95 ms/item | first / last fifth items/s | compared per item (mean / p95) "
           "| dups in wrong story | RSS MB | machine µs (before / after) |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        b = builds[r["size"]]
        c = r.get("candidates")
        cands = f"{c['mean']:.0f} / {c['p95']}" if c else "-"
        out.append(
            f"| {r['size']:,} | {b['ingest_wall_s']:,.0f} / {b['ingest_cpu_s']:,.0f} | "
            f"{r['ingest_wall_s']:.1f} / {r['ingest_cpu_s']:.1f} | {r['cpu_ms_per_item']:.3f} / "
            f"{r.get('worker_cpu_ms_per_item', 0):.3f} | "
            f"{r['p95_ms_per_item']:.3f} | {r['first_fifth_items_per_s']:,.0f} / "
            f"{r['last_fifth_items_per_s']:,.0f} | {cands} | "
            f"{r['quality']['dups_in_wrong_story']:.4f} | {r['max_rss_mb']:,.0f} | "
            f"{r.get('speed_us_before', 0):.0f} / {r.get('speed_us_after', 0):.0f} |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000",
                   help="stored items before the measured ingest (comma-separated)")
    p.add_argument("--new", type=int, default=10000, help="new items ingested and timed")
    p.add_argument("--quick", action="store_true", help="sizes 2000,20000: a smoke run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/dedupe-bench"))
    p.add_argument("--no-candidates", action="store_true",
                   help="skip counting compared candidates after the run")
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--reuse", action="store_true",
                   help="reuse a cached build made by other library code (when the change "
                        "does not touch what is stored, e.g. a faster commit path)")
    p.add_argument("--warmup", type=int, default=0,
                   help="items ingested untimed first by the same store and workers: the "
                        "steady state of a long-running `serve` (default 0: a fresh process, "
                        "as each cron run is)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes fingerprinting the new items beside the store, as the "
                        "parse workers do for a new source (0: the store computes them)")
    args = p.parse_args()
    global REUSE
    REUSE = args.reuse
    sizes = [2000, 20000] if args.quick else [int(s) for s in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    synth = Synth(args.seed)
    print(f"commit {COMMIT} (library {LIBRARY}), Python {sys.version.split()[0]}, SQLite "
          f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs, sizes {sizes}, new {args.new}",
          flush=True)
    sim = similarity_sample(synth, PER_DAY * 10)
    print(f"unrelated pairs (same 1-3 days): text word Jaccard mean "
          f"{sim['text_jaccard_mean']:.3f} (p95 {sim['text_jaccard_p95']:.3f}), word-pair "
          f"overlap mean {sim['pair_overlap_mean']:.3f} (p99 {sim['pair_overlap_p99']:.3f})",
          flush=True)
    builds: dict[int, dict[str, Any]] = {}
    rows = []
    for size in sizes:
        synth.memo.clear()
        builds[size] = build(synth, size, args.workdir)
        synth.memo.clear()
        rows.append(measure(synth, size, args.new, args.workdir, not args.no_candidates,
                            args.workers, args.warmup))
        rows[-1]["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        remove_db(args.workdir / f"work-{size}.db")
        print()
        print(table(rows, builds))  # after each size: a long run shows what it has so far
        print()
        print(detail(rows, builds))
        print(flush=True)
        if args.json:
            numbers = {"commit": COMMIT, "library": LIBRARY, "similarity": sim,
                       "builds": builds, "runs": rows}
            args.json.write_text(json.dumps(numbers, indent=1, default=str))


if __name__ == "__main__":
    main()
