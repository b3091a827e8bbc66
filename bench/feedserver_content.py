# ruff: noqa: E501  (templates and word lists read better unwrapped)
"""Synthetic Indonesian-government-news feeds for the poll benchmark (stdlib only).

Deterministic for a given seed. Four feed flavours, as such sites really publish them:
- `wp`: WordPress RSS 2.0 with `content:encoded` (full article HTML in CDATA), excerpt
  `description`, `dc:creator`, categories, `?p=` GUIDs;
- `wp-summary`: WordPress RSS 2.0 without full content (HTML excerpt with an image);
- `blogger`: Blogger Atom (escaped HTML `content`, `media:thumbnail`, tag: ids);
- `cms`: a home-grown PHP CMS: RSS 2.0 without GUIDs, full HTML `description` with relative
  image links, `media:content`, dates in +0700 or in Indonesian ("Senin, 13 Januari 2025
  10:15 WIB").
Some articles (press releases of a province, a ministry or the police) appear in several feeds:
under the same link, the same link with tracking parameters / http / a trailing slash, or
republished under the other site's own URL with a lightly edited text.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

WIB = timezone(timedelta(hours=7), "WIB")

PLACES = [
    ("kab", "Bogor", "bogorkab.go.id", "jawa-barat"), ("kab", "Bekasi", "bekasikab.go.id", "jawa-barat"),
    ("kab", "Garut", "garutkab.go.id", "jawa-barat"), ("kab", "Cianjur", "cianjurkab.go.id", "jawa-barat"),
    ("kab", "Sukabumi", "sukabumikab.go.id", "jawa-barat"), ("kab", "Karawang", "karawangkab.go.id", "jawa-barat"),
    ("kota", "Bandung", "bandung.go.id", "jawa-barat"), ("kota", "Depok", "depok.go.id", "jawa-barat"),
    ("kota", "Cirebon", "cirebonkota.go.id", "jawa-barat"), ("kab", "Tasikmalaya", "tasikmalayakab.go.id", "jawa-barat"),
    ("kab", "Sleman", "slemankab.go.id", "di-yogyakarta"), ("kab", "Bantul", "bantulkab.go.id", "di-yogyakarta"),
    ("kab", "Kulon Progo", "kulonprogokab.go.id", "di-yogyakarta"), ("kota", "Yogyakarta", "jogjakota.go.id", "di-yogyakarta"),
    ("kab", "Banyumas", "banyumaskab.go.id", "jawa-tengah"), ("kab", "Klaten", "klatenkab.go.id", "jawa-tengah"),
    ("kab", "Boyolali", "boyolali.go.id", "jawa-tengah"), ("kota", "Semarang", "semarangkota.go.id", "jawa-tengah"),
    ("kota", "Surakarta", "surakarta.go.id", "jawa-tengah"), ("kab", "Kudus", "kuduskab.go.id", "jawa-tengah"),
    ("kab", "Pati", "patikab.go.id", "jawa-tengah"), ("kota", "Tegal", "tegalkota.go.id", "jawa-tengah"),
    ("kab", "Sidoarjo", "sidoarjokab.go.id", "jawa-timur"), ("kab", "Gresik", "gresikkab.go.id", "jawa-timur"),
    ("kab", "Malang", "malangkab.go.id", "jawa-timur"), ("kota", "Surabaya", "surabaya.go.id", "jawa-timur"),
    ("kab", "Jember", "jemberkab.go.id", "jawa-timur"), ("kota", "Kediri", "kedirikota.go.id", "jawa-timur"),
    ("kab", "Banyuwangi", "banyuwangikab.go.id", "jawa-timur"), ("kab", "Badung", "badungkab.go.id", "bali"),
    ("kab", "Gianyar", "gianyarkab.go.id", "bali"), ("kota", "Denpasar", "denpasarkota.go.id", "bali"),
    ("kota", "Makassar", "makassarkota.go.id", "sulawesi-selatan"), ("kab", "Gowa", "gowakab.go.id", "sulawesi-selatan"),
    ("kab", "Maros", "maroskab.go.id", "sulawesi-selatan"), ("kota", "Manado", "manadokota.go.id", "sulawesi-utara"),
    ("kota", "Balikpapan", "balikpapan.go.id", "kalimantan-timur"), ("kota", "Samarinda", "samarindakota.go.id", "kalimantan-timur"),
    ("kota", "Pontianak", "pontianak.go.id", "kalimantan-barat"), ("kota", "Palembang", "palembang.go.id", "sumatera-selatan"),
    ("kota", "Padang", "padang.go.id", "sumatera-barat"), ("kota", "Pekanbaru", "pekanbaru.go.id", "riau"),
    ("kota", "Medan", "pemkomedan.go.id", "sumatera-utara"), ("kab", "Deli Serdang", "deliserdangkab.go.id", "sumatera-utara"),
    ("kota", "Jayapura", "jayapurakota.go.id", "papua"), ("kab", "Sorong", "sorongkab.go.id", "papua-barat-daya"),
    ("kota", "Kupang", "kupangkota.go.id", "nusa-tenggara-timur"), ("kota", "Mataram", "mataramkota.go.id", "nusa-tenggara-barat"),
    ("kota", "Ambon", "ambon.go.id", "maluku"), ("kota", "Kendari", "kendarikota.go.id", "sulawesi-tenggara"),
    ("kota", "Palu", "palukota.go.id", "sulawesi-tengah"), ("kota", "Banjarmasin", "banjarmasinkota.go.id", "kalimantan-selatan"),
    ("kota", "Jambi", "jambikota.go.id", "jambi"), ("kota", "Bengkulu", "bengkulukota.go.id", "bengkulu"),
    ("kab", "Lampung Selatan", "lampungselatankab.go.id", "lampung"), ("kota", "Serang", "serangkota.go.id", "banten"),
    ("kota", "Tangerang", "tangerangkota.go.id", "banten"), ("kab", "Tangerang", "tangerangkab.go.id", "banten"),
    ("kota", "Jakarta Pusat", "pusat.jakarta.go.id", "dki-jakarta"), ("kota", "Jakarta Timur", "timur.jakarta.go.id", "dki-jakarta"),
]
UNITS = [
    ("diskominfo", "Dinas Komunikasi dan Informatika", "Diskominfo"),
    ("dinkes", "Dinas Kesehatan", "Dinkes"),
    ("disdik", "Dinas Pendidikan", "Disdik"),
    ("dpupr", "Dinas Pekerjaan Umum dan Penataan Ruang", "DPUPR"),
    ("dinsos", "Dinas Sosial", "Dinsos"),
    ("bpbd", "Badan Penanggulangan Bencana Daerah", "BPBD"),
    ("bappeda", "Badan Perencanaan Pembangunan Daerah", "Bappeda"),
    ("dukcapil", "Dinas Kependudukan dan Pencatatan Sipil", "Disdukcapil"),
    ("dlh", "Dinas Lingkungan Hidup", "DLH"),
    ("humas", "Bagian Protokol dan Komunikasi Pimpinan", "Prokopim"),
]
NAMES = [
    "Ahmad Fauzi", "Siti Nurhaliza", "Budi Santoso", "Dewi Lestari", "Hendra Gunawan",
    "Sri Wahyuni", "Agus Salim", "Rina Marlina", "Joko Prasetyo", "Nur Aini", "Bambang Sutrisno",
    "Yuliana Sari", "Andi Mappanyukki", "I Made Sudarta", "Ni Luh Putu Ayu", "Muhammad Rizky",
    "Fitri Handayani", "Teguh Wibowo", "Indah Permatasari", "Rahmat Hidayat", "Yohanes Kambu",
    "Maria Goreti", "La Ode Ahmad", "Hj. Rosmiati", "Dr. Supriyadi, M.Kes.", "Ir. Heru Susanto",
]
OFFICIALS = [
    "Bupati", "Wakil Bupati", "Penjabat (Pj) Bupati", "Wali Kota", "Wakil Wali Kota",
    "Sekretaris Daerah (Sekda)", "Kepala Dinas Kesehatan", "Kepala Dinas Pendidikan",
    "Kepala Diskominfo", "Kepala BPBD", "Kepala Bappeda", "Camat", "Lurah", "Ketua DPRD",
    "Asisten Pemerintahan dan Kesra", "Kepala Dinas Sosial",
]
TOPICS = [
    ("percepatan penurunan stunting", "Kesehatan"), ("vaksinasi polio bagi anak", "Kesehatan"),
    ("pembangunan jalan kabupaten", "Infrastruktur"), ("normalisasi saluran drainase", "Infrastruktur"),
    ("penanganan banjir", "Kebencanaan"), ("penyaluran bantuan sosial", "Sosial"),
    ("pemberdayaan UMKM", "Ekonomi"), ("operasi pasar murah", "Ekonomi"),
    ("pengendalian inflasi daerah", "Ekonomi"), ("Musrenbang tingkat kecamatan", "Pemerintahan"),
    ("pembahasan APBD Perubahan", "Pemerintahan"), ("optimalisasi Pendapatan Asli Daerah", "Pemerintahan"),
    ("seleksi PPPK", "Kepegawaian"), ("peringatan Hari Jadi", "Pemerintahan"),
    ("program Makan Bergizi Gratis", "Pendidikan"), ("ketahanan pangan", "Pertanian"),
    ("pengelolaan sampah berbasis masyarakat", "Lingkungan"), ("penyediaan air bersih", "Infrastruktur"),
    ("revitalisasi posyandu", "Kesehatan"), ("layanan Mal Pelayanan Publik", "Pelayanan Publik"),
    ("perekaman KTP elektronik", "Kependudukan"), ("digitalisasi layanan desa", "Teknologi"),
    ("penilaian Adipura", "Lingkungan"), ("pencegahan demam berdarah", "Kesehatan"),
    ("rehabilitasi rumah tidak layak huni", "Sosial"), ("penerimaan peserta didik baru", "Pendidikan"),
]
VERBS_TITLE = [
    "Tinjau", "Resmikan", "Percepat", "Gelar", "Dorong", "Targetkan", "Evaluasi", "Perkuat",
    "Luncurkan", "Pantau", "Bahas", "Sosialisasikan", "Genjot", "Serahkan",
]
VILLAGES = [
    "Cibinong", "Sukamaju", "Mekarsari", "Karanganyar", "Sidomulyo", "Tanjung Sari", "Suka Damai",
    "Panjang Jiwo", "Kebon Jeruk", "Rappocini", "Tamalate", "Wonorejo", "Sumber Agung",
    "Banjarsari", "Kemuning", "Pasir Putih", "Batu Ampar", "Air Tawar",
]
SENTENCES = [
    "{official} {name} menyampaikan bahwa {topic} menjadi prioritas pemerintah daerah tahun ini.",
    "Kegiatan tersebut dipusatkan di Kelurahan {village}, Kecamatan {village2}, dan dihadiri "
    "unsur Forkopimda, tokoh masyarakat serta perwakilan organisasi perangkat daerah.",
    "Menurut {name}, capaian program hingga akhir triwulan ketiga telah mencapai {pct} persen "
    "dari target yang ditetapkan dalam RPJMD.",
    "Pemerintah daerah mengalokasikan anggaran sebesar Rp{amount} miliar melalui APBD untuk "
    "mendukung {topic}.",
    "Ia meminta seluruh camat dan lurah untuk aktif melakukan pendataan sehingga bantuan tepat "
    "sasaran dan tidak terjadi tumpang tindih.",
    "&#8220;Kami ingin masyarakat merasakan langsung manfaat dari {topic}. Pelayanan harus cepat, "
    "mudah dan transparan,&#8221; ujarnya.",
    "Sebanyak {count} warga telah menerima manfaat program ini sejak diluncurkan pada awal tahun.",
    "Selain itu, pemerintah juga berkoordinasi dengan pemerintah provinsi dan kementerian terkait "
    "agar program berjalan berkelanjutan.",
    "Dalam kesempatan itu, {official} juga menyerahkan secara simbolis bantuan kepada {count} "
    "penerima di wilayah {village}.",
    "Masyarakat diimbau untuk memanfaatkan layanan pengaduan melalui aplikasi dan kanal media "
    "sosial resmi pemerintah daerah.",
    "Kepala bidang terkait, {name}, menjelaskan bahwa evaluasi dilakukan setiap bulan bersama "
    "tim teknis dari dinas terkait.",
    "Data Badan Pusat Statistik menunjukkan tren positif, dengan angka mencapai {pct} persen "
    "pada tahun lalu.",
    "Ke depan, program serupa akan diperluas ke {count} desa lainnya secara bertahap.",
    "Rapat koordinasi berlangsung di ruang rapat utama Sekretariat Daerah dan diikuti secara "
    "daring oleh perangkat daerah kecamatan.",
]
TAGS = ["pemkab", "pemkot", "berita-daerah", "pelayanan-publik", "kesehatan", "pendidikan",
        "infrastruktur", "bansos", "umkm", "stunting", "inflasi", "bpbd", "apbd", "dprd"]
DAYS_ID = ["Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"]
MONTHS_ID = ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember"]
FLAVOURS = [("wp", 50), ("wp-summary", 20), ("blogger", 20), ("cms", 10)]
SIZES = {"wp": (60, 115), "wp-summary": (42, 65), "blogger": (55, 112), "cms": (45, 100)}  # KB


def slugify(text: str) -> str:
    out = []
    for ch in html.unescape(text).lower():
        out.append(ch if ch.isalnum() else "-")
    return "-".join(p for p in "".join(out).split("-") if p)[:80]


@dataclass
class Article:
    """One piece of news, as first written; feeds render it in their own way."""

    uid: int
    title: str
    paragraphs: list[str]
    category: str
    author: str
    published: datetime
    image: str
    origin_link: str  # the article's URL on the site that wrote it


@dataclass
class Entry:
    """One article as one feed carries it."""

    article: Article
    link: str
    guid: str
    title: str
    paragraphs: list[str]
    published: datetime
    updated: datetime
    post_id: int


@dataclass
class Feed:
    index: int
    id: str
    path: str
    flavour: str
    domain: str
    site_name: str
    agency_slug: str
    agency_name: str
    region: str
    place: str
    behaviour: str = "ok"  # ok | slow | error500
    validators: str = "both"  # both | lm | none
    entries: list[Entry] = field(default_factory=list)
    version: int = 0
    next_post_id: int = 1000
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    target: int = 900  # article length (characters of HTML) aimed at


class Generator:
    def __init__(self, seed: int, now: datetime | None = None) -> None:
        self.seed = seed
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.rng = random.Random(seed)
        self.article_uid = 0

    # --- text -------------------------------------------------------------------------------

    def _sentence(self, rng: random.Random, topic: str, place: str) -> str:
        return rng.choice(SENTENCES).format(
            official=rng.choice(OFFICIALS) + " " + place, name=rng.choice(NAMES), topic=topic,
            village=rng.choice(VILLAGES), village2=rng.choice(VILLAGES),
            pct=f"{rng.randint(40, 99)},{rng.randint(0, 9)}",
            amount=f"{rng.randint(1, 250)},{rng.randint(1, 9)}", count=f"{rng.randint(12, 9800):,}".replace(",", "."),
        )

    def _paragraphs(self, rng: random.Random, topic: str, place: str, domain: str,
                    target: int) -> list[str]:
        paras: list[str] = []
        size = 0
        first = True
        while size < target:
            body = " ".join(self._sentence(rng, topic, place) for _ in range(rng.randint(1, 3)))
            roll = rng.random()
            if first:
                p = f"<p><strong>{place.upper()}</strong> &#8211; {body}</p>"
                first = False
            elif roll < 0.12:
                img = f"https://{domain}/wp-content/uploads/{self.now:%Y/%m}/IMG-{rng.randint(10**7, 10**8)}-WA00{rng.randint(10, 99)}"
                p = (f'<figure class="wp-block-image size-large"><img decoding="async" '
                     f'loading="lazy" width="1024" height="683" src="{img}-1024x683.jpg" alt="" '
                     f'class="wp-image-{rng.randint(1000, 99999)}" srcset="{img}-1024x683.jpg 1024w, '
                     f'{img}-300x200.jpg 300w, {img}-768x512.jpg 768w" sizes="(max-width: 1024px) '
                     f'100vw, 1024px" /><figcaption class="wp-element-caption">{html.escape(self._sentence(rng, topic, place)[:90])}'
                     f"</figcaption></figure>")
            elif roll < 0.20:
                other = rng.choice(TOPICS)[0]
                p = (f'<p><strong>Baca juga: <a href="https://{domain}/berita/{slugify(other)}-'
                     f'{rng.randint(100, 9999)}/">{other.capitalize()} di {place} Terus '
                     f"Ditingkatkan</a></strong></p>")
            elif roll < 0.26:
                items = "".join(f"<li>{self._sentence(rng, topic, place)}</li>"
                                for _ in range(rng.randint(2, 4)))
                p = f"<ul>{items}</ul>"
            elif roll < 0.30:
                p = f"<blockquote><p>{body}</p></blockquote>"
            elif roll < 0.45:
                tag = rng.choice(TAGS)
                p = (f'<p style="text-align: justify;">{body} Informasi lebih lanjut dapat dilihat '
                     f'di <a href="/tag/{tag}/" target="_blank" rel="noopener">{tag}</a>.</p>')
            elif roll < 0.48:
                p = (f'<p><span style="font-family: arial, helvetica, sans-serif; font-size: '
                     f'12pt;">{body}</span>&nbsp;</p>')
            elif roll < 0.50:
                p = (f'<p>{body}</p><script type="text/javascript">var _paq = window._paq || [];'
                     f"_paq.push(['trackPageView']);</script>")
            else:
                p = f"<p>{body}</p>"
            paras.append(p)
            size += len(p)
        paras.append(f"<p>(<em>{rng.choice(UNITS)[2]} {place}</em>)</p>")
        return paras

    def article(self, rng: random.Random, place: str, domain: str, when: datetime,
                target: int) -> Article:
        topic, category = rng.choice(TOPICS)
        title = (f"{rng.choice(['Pemkab', 'Pemkot', 'Pj Bupati', 'Wali Kota', 'Bupati', 'Sekda', 'Dinkes', 'BPBD', 'Disdik'])} "
                 f"{place} {rng.choice(VERBS_TITLE)} {topic.capitalize()}"
                 f"{rng.choice(['', '', ' di Kecamatan ' + rng.choice(VILLAGES), ' Tahun 2025', ' Jelang Akhir Tahun', ' &amp; Layanan Terpadu'])}")
        self.article_uid += 1
        paras = self._paragraphs(rng, topic, place, domain, target)
        image = (f"https://{domain}/wp-content/uploads/{when:%Y/%m}/"
                 f"foto-{slugify(topic)[:30]}-{rng.randint(1, 9999)}.jpg")
        link = f"https://{domain}/berita/{when:%Y/%m/%d}/{slugify(title)}/"
        return Article(self.article_uid, title, paras, category, rng.choice(NAMES), when, image,
                       link)

    # --- feeds ------------------------------------------------------------------------------

    def feeds(self, n: int, slow: int, errors: int, no_validators: float,
              lm_only: float) -> list[Feed]:
        rng = self.rng
        weights = [w for _, w in FLAVOURS]
        feeds: list[Feed] = []
        for i in range(n):
            kind, name, domain, region = PLACES[i % len(PLACES)]
            unit_slug, unit_name, unit_short = UNITS[(i // len(PLACES)) % len(UNITS)]
            rep = i // (len(PLACES) * len(UNITS))
            flavour = rng.choices([f for f, _ in FLAVOURS], weights)[0]
            sub = f"{unit_slug}.{domain}" if unit_slug != "humas" else f"www.{domain}"
            if flavour == "blogger":
                sub = f"{unit_slug}-{slugify(name)}{rep or ''}.blogspot.com"
            agency_slug = f"{unit_slug}-{kind}-{slugify(name)}" + (f"-{rep}" if rep else "")
            fid = f"{agency_slug}-berita"
            path = f"/feeds/{i:04d}/{'feed' if flavour.startswith('wp') else 'rss.xml' if flavour == 'cms' else 'atom.xml'}"
            site = f"{unit_name} {'Kabupaten' if kind == 'kab' else 'Kota'} {name}"
            feeds.append(Feed(i, fid, path, flavour, sub, site, agency_slug,
                              f"{unit_short} {'Kab.' if kind == 'kab' else 'Kota'} {name}"
                              + (f" ({rep + 1})" if rep else ""), region, name))
        # Spread the misbehaving feeds over the list (not all at the end of the queue).
        picks = rng.sample(range(n), min(n, slow + errors))
        for j, idx in enumerate(picks):
            feeds[idx].behaviour = "slow" if j < slow else "error500"
        for f in feeds:
            roll = rng.random()
            f.validators = "none" if roll < no_validators else \
                "lm" if roll < no_validators + lm_only else "both"

        # Shared press releases: each appears in ~4 feeds.
        pool_size = max(4, n)
        pool: list[Article] = []
        for _ in range(pool_size):
            origin = rng.choice(feeds)
            when = self.now - timedelta(minutes=rng.randint(30, 14 * 24 * 60))
            pool.append(self.article(rng, origin.place, origin.domain, when,
                                     rng.randint(900, 1800)))
        for f in feeds:
            # Scale the articles' length until the body is near a size drawn for the feed,
            # within 40-120 KB.
            lo, hi = SIZES[f.flavour]
            wanted = rng.uniform(lo, hi) * 1024
            # size(target) is about linear: measure two points, then aim (and correct once).
            points: list[tuple[int, int]] = []
            for attempt in range(4):
                if attempt == 0:
                    f.target = 900
                elif attempt == 1:
                    f.target = 300
                else:
                    (t1, s1), (t2, s2) = points[-2], points[-1]
                    slope = (s1 - s2) / (t1 - t2) if t1 != t2 and s1 != s2 else 50.0
                    f.target = min(4000, max(60, int(t2 + (wanted - s2) / max(slope, 1.0))))
                f.entries, f.next_post_id = [], 1000
                self._fill(f, pool, 50)
                size = len(render(f))
                points.append((f.target, size))
                if attempt >= 1 and abs(size - wanted) < 0.1 * wanted and \
                        40 * 1024 <= size <= 120 * 1024:
                    break
        return feeds

    def _fill(self, f: Feed, pool: list[Article], count: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + f.index)
        target = f.target
        per_day = rng.uniform(0.7, 8.0)
        when = self.now - timedelta(minutes=rng.randint(5, 600))
        for _ in range(count):
            if rng.random() < 0.08:
                art = rng.choice(pool)
                f.entries.append(self._entry(f, art, rng, shared=True))
            else:
                art = self.article(rng, f.place, f.domain, when,
                                   int(target * rng.uniform(0.7, 1.3)))
                f.entries.append(self._entry(f, art, rng, shared=False))
            when -= timedelta(minutes=int(rng.expovariate(per_day) * 24 * 60) + 1)
        f.entries.sort(key=lambda e: e.published, reverse=True)

    def _entry(self, f: Feed, art: Article, rng: random.Random, shared: bool) -> Entry:
        f.next_post_id += rng.randint(1, 7)
        post_id = f.next_post_id
        link, paragraphs, published = art.origin_link, art.paragraphs, art.published
        if shared:
            roll = rng.random()
            if roll < 0.4:
                pass  # the same URL
            elif roll < 0.7:
                link = rng.choice([
                    f"{link}?utm_source=rss&utm_medium=feed&utm_campaign={f.domain.split('.')[0]}",
                    link.replace("https://", "http://"),
                    link.rstrip("/"),
                    f"{link}#more-{post_id}",
                ])
            else:  # republished under this site's own URL, lightly edited
                link = f"https://{f.domain}/berita/{published:%Y/%m/%d}/{slugify(art.title)}/"
                paragraphs = [*paragraphs[:-1], f"<p>(<em>Sumber: Humas {art.origin_link.split('/')[2]}</em>)</p>"]
                published += timedelta(minutes=rng.randint(20, 300))
        if f.flavour == "cms":
            link = f"https://{f.domain}/berita/read/{post_id}/{slugify(art.title)}" if not shared else link
        if f.flavour == "blogger" and not shared:
            link = f"https://{f.domain}/{published:%Y/%m}/{slugify(art.title)[:40]}.html"
        published = min(published, self.now)
        guid = {"wp": f"https://{f.domain}/?p={post_id}", "wp-summary": f"https://{f.domain}/?p={post_id}",
                "blogger": f"tag:blogger.com,1999:blog-{7000000 + f.index}.post-{post_id}",
                "cms": ""}[f.flavour]
        return Entry(art, link, guid, art.title, list(paragraphs), published, published, post_id)

    def mutate(self, f: Feed, rng: random.Random, now: datetime) -> tuple[int, int]:
        """New items on top (oldest dropped, still 50) and a few edits. Returns (new, edited)."""
        new = rng.randint(1, 5)
        target = f.target
        for k in range(new):
            when = now - timedelta(minutes=k * rng.randint(3, 40) + 1)
            art = self.article(rng, f.place, f.domain, when, target)
            f.entries.insert(0, self._entry(f, art, rng, shared=False))
        del f.entries[50:]
        edited = 0
        for e in rng.sample(f.entries[new:], min(len(f.entries) - new, rng.randint(1, 3))):
            if rng.random() < 0.5 or f.flavour == "wp-summary":  # (its excerpt hides edits)
                e.title = e.title + " (Diperbarui)"
            else:
                e.paragraphs.insert(-1, "<p><strong>Pembaruan:</strong> "
                                    + self._sentence(rng, "pelayanan publik", f.place) + "</p>")
            e.updated = now
            edited += 1
        f.entries.sort(key=lambda e: e.published, reverse=True)
        f.version += 1
        f.modified = now
        return new, edited


# --- rendering ------------------------------------------------------------------------------


def _x(text: str) -> str:
    """Escape for XML text; keeps the numeric character references feeds often carry."""
    return text.replace("&", "&amp;").replace("&amp;#", "&#").replace("&amp;amp;", "&amp;") \
        .replace("<", "&lt;").replace(">", "&gt;")


def _excerpt(paragraphs: list[str], words: int = 55) -> str:
    import re

    text = re.sub(r"<[^>]+>", " ", " ".join(paragraphs[:2]))
    return " ".join(text.split()[:words]) + " [&#8230;]"


def _id_date(d: datetime) -> str:
    d = d.astimezone(WIB)
    return f"{DAYS_ID[d.weekday()]}, {d.day:02d} {MONTHS_ID[d.month - 1]} {d.year} {d:%H:%M} WIB"


def render(f: Feed) -> bytes:
    return {"wp": _render_wp, "wp-summary": _render_wp, "blogger": _render_blogger,
            "cms": _render_cms}[f.flavour](f).encode("utf-8")


def _render_wp(f: Feed) -> str:
    base = f"https://{f.domain}"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"\n'
        '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
        '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
        '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '\txmlns:atom="http://www.w3.org/2005/Atom"\n'
        '\txmlns:sy="http://purl.org/rss/1.0/modules/syndication/"\n'
        '\txmlns:slash="http://purl.org/rss/1.0/modules/slash/"\n\t>\n\n<channel>\n',
        f"\t<title>{_x(f.site_name)}</title>\n",
        f'\t<atom:link href="{base}/feed/" rel="self" type="application/rss+xml" />\n',
        f"\t<link>{base}</link>\n\t<description>Portal Berita Resmi {_x(f.site_name)}</description>\n",
        f"\t<lastBuildDate>{format_datetime(f.entries[0].updated)}</lastBuildDate>\n",
        "\t<language>id</language>\n\t<sy:updatePeriod>\n\thourly\t</sy:updatePeriod>\n"
        "\t<sy:updateFrequency>\n\t1\t</sy:updateFrequency>\n"
        "\t<generator>https://wordpress.org/?v=6.4.3</generator>\n",
    ]
    for e in f.entries:
        cats = "".join(f"\t\t<category><![CDATA[{c}]]></category>\n"
                       for c in ("Berita", e.article.category))
        if f.flavour == "wp":
            desc = _excerpt(e.paragraphs)
            content = ("\t\t<content:encoded><![CDATA[" + "\n".join(e.paragraphs)
                       + "]]></content:encoded>\n")
        else:
            desc = (f'<img width="300" height="200" src="{e.article.image}" class="attachment-medium '
                    f'size-medium wp-post-image" alt="" decoding="async" />'
                    + e.paragraphs[0])
            content = ""
        out.append(
            f"\t<item>\n\t\t<title>{_x(e.title)}</title>\n\t\t<link>{_x(e.link)}</link>\n"
            f"\t\t<comments>{_x(e.link)}#respond</comments>\n"
            f"\t\t<dc:creator><![CDATA[{e.article.author}]]></dc:creator>\n"
            f"\t\t<pubDate>{format_datetime(e.published)}</pubDate>\n{cats}"
            f'\t\t<guid isPermaLink="false">{e.guid}</guid>\n'
            f"\t\t<description><![CDATA[{desc}]]></description>\n{content}"
            f"\t\t<wfw:commentRss>{_x(e.link)}feed/</wfw:commentRss>\n"
            f"\t\t<slash:comments>0</slash:comments>\n\t</item>\n"
        )
    out.append("\t</channel>\n</rss>\n")
    return "".join(out)


def _iso(d: datetime) -> str:
    return d.astimezone(WIB).strftime("%Y-%m-%dT%H:%M:%S.000+07:00")


def _render_blogger(f: Feed) -> str:
    blog = 7000000 + f.index
    base = f"https://{f.domain}"
    out = [
        "<?xml version='1.0' encoding='UTF-8'?><?xml-stylesheet href=\"https://www.blogger.com/"
        "styles/atom.css\" type=\"text/css\"?><feed xmlns='http://www.w3.org/2005/Atom' "
        "xmlns:openSearch='http://a9.com/-/spec/opensearchrss/1.0/' "
        "xmlns:blogger='http://schemas.google.com/blogger/2008' "
        "xmlns:georss='http://www.georss.org/georss' xmlns:gd=\"http://schemas.google.com/g/2005\" "
        "xmlns:thr='http://purl.org/syndication/thread/1.0'>",
        f"<id>tag:blogger.com,1999:blog-{blog}</id><updated>{_iso(f.entries[0].updated)}</updated>",
        "".join(f'<category term="{c}"/>' for c in ("Berita", "Kegiatan", "Pengumuman")),
        f"<title type='text'>{_x(f.site_name)}</title><subtitle type='html'>Media informasi "
        f"{_x(f.site_name)}</subtitle>",
        f"<link rel='http://schemas.google.com/g/2005#feed' type='application/atom+xml' "
        f"href='{base}/feeds/posts/default'/><link rel='self' type='application/atom+xml' "
        f"href='https://www.blogger.com/feeds/{blog}/posts/default'/><link rel='alternate' "
        f"type='text/html' href='{base}/'/><author><name>Admin</name><uri>https://www.blogger.com/"
        f"profile/{blog}</uri><email>noreply@blogger.com</email></author><generator "
        f"version='7.00' uri='http://www.blogger.com'>Blogger</generator>"
        f"<openSearch:totalResults>{1000 + f.index}</openSearch:totalResults>"
        f"<openSearch:startIndex>1</openSearch:startIndex><openSearch:itemsPerPage>50"
        f"</openSearch:itemsPerPage>",
    ]
    for e in f.entries:
        content = html.escape("".join(e.paragraphs), quote=False)
        out.append(
            f"<entry><id>{e.guid}</id><published>{_iso(e.published)}</published>"
            f"<updated>{_iso(e.updated)}</updated><category scheme=\"http://www.blogger.com/atom/ns#\" "
            f"term=\"{e.article.category}\"/><title type='text'>{_x(e.title)}</title>"
            f"<content type='html'>{content}</content>"
            f"<link rel='replies' type='application/atom+xml' href='{base}/feeds/{e.post_id}/"
            f"comments/default' title='Posting Komentar'/><link rel='edit' "
            f"type='application/atom+xml' href='https://www.blogger.com/feeds/{blog}/posts/"
            f"default/{e.post_id}'/><link rel='alternate' type='text/html' href='{_x(e.link)}' "
            f"title='{html.escape(html.unescape(e.title), quote=True)}'/><author><name>"
            f"{e.article.author}</name><uri>https://www.blogger.com/profile/{blog}</uri>"
            f"<email>noreply@blogger.com</email><gd:image rel='http://schemas.google.com/g/2005#"
            f"thumbnail' width='16' height='16' src='https://img1.blogblog.com/img/"
            f"b16-rounded.gif'/></author><media:thumbnail xmlns:media=\"http://search.yahoo.com/"
            f"mrss/\" url=\"{e.article.image}\" height=\"72\" width=\"72\"/><thr:total>0"
            f"</thr:total></entry>"
        )
    out.append("</feed>")
    return "".join(out)


def _render_cms(f: Feed) -> str:
    indonesian_dates = f.index % 2 == 0
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/">\n<channel>\n',
        f"<title>Berita - {_x(f.site_name)}</title>\n<link>https://{f.domain}/berita</link>\n"
        f"<description>Berita terbaru {_x(f.site_name)}</description>\n<language>id-ID</language>\n",
    ]
    for e in f.entries:
        image_rel = "/uploads/berita/" + e.article.image.rsplit("/", 1)[1]
        desc = (f'<p><img src="{image_rel}" alt="{html.escape(html.unescape(e.title))}" '
                f'style="width:100%"></p>' + "".join(e.paragraphs))
        when = _id_date(e.published) if indonesian_dates else \
            format_datetime(e.published.astimezone(WIB))
        out.append(
            f"<item>\n<title>{_x(e.title)}</title>\n<link>{_x(e.link)}</link>\n"
            f"<description><![CDATA[{desc}]]></description>\n<pubDate>{when}</pubDate>\n"
            f'<media:content url="https://{f.domain}{image_rel}" medium="image" '
            f'type="image/jpeg"/>\n<category>{e.article.category}</category>\n</item>\n'
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out)
