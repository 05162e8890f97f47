/*
 * demo_db.c: the demo database (`sqlfeed demo-db`), a SQLite file with the
 * jobs/companies schema of the reference dataset (bench/DATASET.md) filled
 * with realistic text, and the child tables the built-in formats read: a
 * job's locations, a shop's products and their images (docs/formats.md).
 * Each child table draws from a PRNG stream of its own, so the jobs and
 * companies are byte for byte what they were without them.
 *
 * The data follows bench/make_jobs_db.py in shape and proportions, not byte
 * for byte: the text is made here with our own PRNG (xoshiro256** seeded by
 * splitmix64), so a (rows, seed) pair gives the same file on every platform
 * that has the same SQLite version, with no dependency on libc's rand().
 *
 * It is part of the command, not of the library (a library user has no use
 * for made-up job listings): it is linked into the CLI only and uses only the
 * public header and SQLite. It allocates nothing itself; SQLite's allocations
 * go through the command's census (cli/sqlite_mem.c), like a render's. Each
 * row is built in fixed stack buffers, and a company's name is recomputed
 * from (seed, company id) when a job needs it instead of being kept in a
 * table that would grow with the row count.
 *
 * It fills a file it is given and publishes nothing itself: `sqlfeed
 * demo-db` hands it the temporary file of a library output
 * (sf_output_open_file) and commits that, so the database is published like
 * every feed: renamed into place only when complete and synced, never into
 * /dev, /proc or /sys, any name the file system accepts, every signal.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "demo_db.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <signal.h>
#include <sqlite3.h>

#if defined(__GNUC__)
#define DEMO_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DEMO_PRINTF(f, a)
#endif

#define DEMO_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The most rows accepted (the file is about 3.5 KB a row, so this is already
 * some 350 GB): a larger count is taken for a mistake. */
#define DEMO_MAX_ROWS 100000000u

/* Descriptions stop growing at 2800 bytes plus at most one part, and the
 * largest part (a list of six long sentences) stays under 3 KB, so 8 KB never
 * fills; the builder still refuses whole pieces rather than overrun. */
#define DEMO_DESC_MAX 8192
#define DEMO_DESC_PART_MAX 3500

/* ------------------------------------------------------------------------ */
/* PRNG                                                                     */

/* xoshiro256**: fast, small state, and fully specified, so the database does
 * not change with the C library. */
typedef struct demo_rng {
    uint64_t s[4];
} demo_rng;

static uint64_t demo_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Independent streams from one seed: stream 0 makes the jobs, stream `id`
 * makes company `id`, so any company can be recreated on its own. */
static void demo_rng_seed(demo_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03u);
    for (size_t i = 0; i < 4; i++)
        r->s[i] = demo_splitmix64(&x);
}

static uint64_t demo_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t demo_rng_next(demo_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = demo_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = demo_rotl(s[3], 45);
    return result;
}

/* A number in [0, n), n <= 2^32, by multiply-shift (Lemire) without the
 * rejection step: the bias is below n / 2^32, far under anything visible. */
static uint64_t demo_below(demo_rng *r, uint64_t n)
{
    return ((demo_rng_next(r) >> 32) * n) >> 32;
}

/* A number in [lo, hi], both included, like Python's randint. */
static uint64_t demo_range(demo_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + demo_below(r, hi - lo + 1);
}

/* True with probability per_mille / 1000. */
static int demo_chance(demo_rng *r, uint64_t per_mille) { return demo_below(r, 1000) < per_mille; }

/* Streams of the child tables: far above any company id (stream cid). */
#define DEMO_STREAM_LOCATIONS (UINT64_C(1) << 48)
#define DEMO_STREAM_PRODUCTS ((UINT64_C(1) << 48) + 1)

#define DEMO_PICK(r, list) ((list)[demo_below((r), DEMO_COUNT(list))])

/* ------------------------------------------------------------------------ */
/* Text builder over a caller's fixed buffer                                */

typedef struct demo_buf {
    char *p;
    size_t len, cap;
} demo_buf;

static demo_buf demo_buf_on(char *p, size_t cap)
{
    demo_buf b = {p, 0, cap};
    return b;
}

/* Appends all of s or nothing: a piece is never cut, so the text stays valid
 * UTF-8 even if a buffer were too small. */
static void demo_put(demo_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void demo_puts(demo_buf *b, const char *s) { demo_put(b, s, strlen(s)); }

/* v in decimal, zero-padded to at least `width` digits. */
static void demo_put_num(demo_buf *b, uint64_t v, int width)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v != 0 || width > 0);
    demo_put(b, tmp + i, sizeof tmp - i);
}

/* v in upper-case hexadecimal, zero-padded to `width` digits. */
static void demo_put_hex(demo_buf *b, uint64_t v, int width)
{
    static const char digits[] = "0123456789ABCDEF";
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = digits[v & 15];
        v >>= 4;
        width--;
    } while ((v != 0 || width > 0) && i > 0);
    demo_put(b, tmp + i, sizeof tmp - i);
}

/* ------------------------------------------------------------------------ */
/* Word lists (those of make_jobs_db.py)                                    */

static const char *const demo_seniority[] = {
    "Junior", "Senior", "Lead", "Principal", "Staff", "Associate", "Chief", "Head",
    "Assistant", "Trainee", "", "", "", "", "", ""};
static const char *const demo_roles[] = {
    "Software Engineer", "Data Analyst", "Nurse", "Accountant", "Sales Representative",
    "Warehouse Associate", "Project Manager", "Graphic Designer", "Truck Driver",
    "Customer Service Agent", "Electrician", "Pharmacist", "Teacher", "Chef",
    "Marketing Coordinator", "Mechanical Engineer", "DevOps Engineer", "Product Owner",
    "Legal Counsel", "HR Generalist", "Data Scientist", "QA Tester", "Barista",
    "Site Reliability Engineer", "Financial Analyst", "Welder", "Dental Hygienist"};
static const char *const demo_special_titles[] = {
    "R&D Engineer", "C++ & Go Developer", "Sales & Marketing Manager",
    "Research & Development Scientist", "Health & Safety Officer", "AT&T Field Technician",
    "Q&A Specialist", "Food & Beverage Supervisor"};
static const char *const demo_accented_titles[] = {
    "Développeur Logiciel", "Ingénieur Qualité", "Café Manager", "Señor Analista",
    "Sachbearbeiter Lohn- und Gehaltsabrechnung (m/w/d)", "Responsable Comptabilité",
    "Técnico de Mantenimiento", "Kundenberater für Privatkunden"};
static const char *const demo_cjk_titles[] = {
    "软件工程师", "ソフトウェアエンジニア", "데이터 분석가", "市场营销经理", "看護師（正社員）"};
/* Four-byte UTF-8, and one ZWJ sequence. */
static const char *const demo_emoji[] = {"🚀", "✨", "💼", "🔥", "🌍", "👩‍💻", "☕", "📈"};

static const char *const demo_co_a[] = {
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
    "Soylent", "Cyberdyne", "Tyrell", "Wonka", "Gringotts", "Oscorp", "Nakatomi",
    "Aperture", "Massive", "Dynamic", "Blue", "Sun", "Northwind", "Contoso", "Fabrikam",
    "Tailspin", "Litware", "Adventure", "Alpine", "Proseware", "Wingtip", "Coho", "Lucerne"};
static const char *const demo_co_b[] = {
    "Systems", "Industries", "Labs", "Logistics", "Health", "Foods", "Consulting",
    "Partners", "Holdings", "Software", "Retail", "Energy", "Media", "Analytics",
    "Robotics", "Capital", "Pharma", "Solutions", "Group"};
static const char *const demo_co_suffix[] = {
    "Inc.", "LLC", "Ltd", "GmbH", "S.A.", "& Co.", "& Sons", "Corp.", ""};
static const char *const demo_co_special[] = {
    "Müller & Söhne GmbH", "Société Générale d'Études", "O'Brien \"Fresh\" Bakery",
    "株式会社サクラ", "北京星辰科技有限公司", "Crème Brûlée Café", "Ærø Shipping A/S"};

typedef struct demo_place {
    const char *city, *state, *postal_prefix, *country;
} demo_place;

static const demo_place demo_places[] = {
    {"New York", "NY", "100", "US"},      {"Los Angeles", "CA", "900", "US"},
    {"Chicago", "IL", "606", "US"},       {"Houston", "TX", "770", "US"},
    {"Phoenix", "AZ", "850", "US"},       {"Philadelphia", "PA", "191", "US"},
    {"San Antonio", "TX", "782", "US"},   {"San Diego", "CA", "921", "US"},
    {"Dallas", "TX", "752", "US"},        {"Austin", "TX", "787", "US"},
    {"Seattle", "WA", "981", "US"},       {"Denver", "CO", "802", "US"},
    {"Boston", "MA", "021", "US"},        {"Atlanta", "GA", "303", "US"},
    {"Coeur d'Alene", "ID", "838", "US"}, {"Española", "NM", "875", "US"},
    {"Toronto", "ON", "M5V", "CA"},       {"Montréal", "QC", "H2X", "CA"},
    {"London", NULL, "EC1", "GB"},        {"München", "BY", "803", "DE"},
    {"Zürich", "ZH", "800", "CH"},        {"Paris", NULL, "750", "FR"},
    {"東京", "東京都", "100", "JP"},      {"上海", NULL, "200", "CN"},
};

static const char *const demo_categories[] = {
    "Engineering", "Healthcare", "Sales", "Finance & Accounting", "Education",
    "Hospitality", "Logistics", "Marketing", "Legal", "Manufacturing", "IT",
    "Customer Service", "Human Resources", "Construction & Trades"};
static const char *const demo_job_types[] = {
    "fulltime", "parttime", "contract", "temporary", "internship", "seasonal"};

static const char *const demo_adj[] = {
    "dynamic", "fast-growing", "innovative", "award-winning", "collaborative", "inclusive",
    "friendly", "established", "remote-first", "global", "local", "family-owned",
    "mission-driven", "data-driven", "customer-focused", "busy", "modern", "supportive",
    "diverse", "leading", "reliable", "motivated", "detail-oriented", "proactive",
    "organized", "energetic", "experienced", "talented", "passionate", "small", "large",
    "regional", "national", "independent", "nonprofit", "public", "private", "rural",
    "urban", "flexible", "structured", "creative", "analytical", "hands-on", "senior",
    "junior", "technical", "clinical", "certified", "licensed", "bilingual", "seasonal",
    "weekend", "overnight", "early", "late", "quiet", "noisy", "secure", "safe", "clean",
    "sustainable", "green", "lean", "agile", "hybrid", "distributed", "growing", "stable"};
static const char *const demo_noun[] = {
    "team", "company", "clinic", "startup", "agency", "warehouse", "kitchen", "office",
    "department", "lab", "school", "hospital", "store", "platform", "product", "service",
    "network", "pipeline", "project", "client", "customer", "patient", "partner", "process",
    "system", "dashboard", "report", "budget", "schedule", "fleet", "invoice", "shipment",
    "contract", "vendor", "supplier", "inventory", "database", "server", "website", "app",
    "campaign", "brand", "event", "classroom", "student", "ward", "shift", "route", "truck",
    "machine", "line", "plant", "audit", "ledger", "payroll", "policy", "proposal",
    "roadmap", "release", "backlog", "sprint", "ticket", "queue", "order", "menu", "recipe",
    "guest", "room", "property", "site", "crew", "workshop", "studio", "branch", "region"};
static const char *const demo_verb[] = {
    "build", "maintain", "design", "support", "manage", "improve", "deliver", "coordinate",
    "analyse", "review", "develop", "operate", "monitor", "test", "document", "train",
    "lead", "plan", "optimise", "prepare", "handle", "schedule", "negotiate",
    "troubleshoot", "implement", "evaluate", "audit", "clean", "cook", "drive", "load",
    "unload", "sell", "market", "teach", "mentor", "assess", "inspect", "repair", "install",
    "configure", "deploy", "migrate", "reconcile", "forecast", "report", "answer", "greet",
    "serve", "stock", "package", "ship", "track"};
static const char *const demo_skill[] = {
    "Python", "Java", "SQL", "Excel", "SAP", "Salesforce", "Kubernetes", "AWS", "Azure",
    "Linux", "Photoshop", "AutoCAD", "QuickBooks", "Tableau", "React", "Go", "Rust", "C#",
    "forklift", "CPR", "HACCP", "OSHA", "Spanish", "Mandarin", "French", "German",
    "scheduling", "budgeting", "bookkeeping", "phlebotomy", "welding", "Terraform",
    "Docker", "PostgreSQL", "Figma", "Jira", "HubSpot", "Workday", "Epic", "Cerner", "PLC",
    "CNC", "SolidWorks", "MATLAB", "PowerBI", "Snowflake", "Kafka", "Spark", "TypeScript",
    "Swift", "Kotlin", "PHP", "Ruby", "Scala", "Hadoop", "GAAP", "IFRS", "Lean",
    "Six-Sigma", "ITIL", "Scrum", "Kanban", "SEO", "Canva"};
static const char *const demo_people[] = {
    "Maria", "James", "Aisha", "Chen", "Olga", "Diego", "Priya", "Tom", "Fatima", "Lukas",
    "Yuki", "Noah", "Emma", "Sofia", "Omar", "Grace", "Ivan", "Leila", "Mateo", "Hannah",
    "Kwame", "Ana", "Pierre", "Zoe"};
/* Prose draws from adjectives, nouns and verbs too (see demo_prose_word). */
static const char *const demo_glue[] = {
    "the", "a", "and", "or", "with", "for", "to", "of", "in", "on", "at", "by", "from",
    "our", "your", "their", "every", "each", "most", "many", "some", "new", "all", "while",
    "when", "because", "after", "before", "during", "across", "quickly", "carefully",
    "daily", "weekly", "monthly", "closely", "directly", "safely", "accurately", "ensure",
    "help", "share", "keep", "meet", "grow", "learn", "join", "own", "drive", "shape",
    "take", "make", "bring"};
static const char *const demo_perks[] = {
    "health, dental & vision insurance", "401(k) with 4% match", "paid time off",
    "flexible hours", "tuition reimbursement", "free parking", "gym membership",
    "stock options", "parental leave", "company car", "remote work options",
    "on-site café", "employee discounts", "annual bonus", "pet insurance",
    "commuter benefits", "free lunch on Fridays", "a $1,500 learning budget",
    "sign-on bonus", "relocation assistance", "life & disability insurance"};
/* Markup-like and non-ASCII bits that must survive escaping. */
static const char *const demo_fragments[] = {
    "Experience <5 years is fine", "salary > market rate", "R&D budget", "Q&A sessions",
    "a 'can-do' attitude", "a \"customer first\" mindset", "à la carte benefits",
    "naïve Bayes models", "résumé required", "déjà vu-free onboarding", "クライアント対応",
    "数据分析", "Ärzte & Pflege", "pros & cons", "tables with >1M rows", "latency <100 ms"};
static const char *const demo_shifts[] = {"Mon-Fri", "Tue-Sat", "weekends", "rotating"};
static const char *const demo_headings[] = {
    "Responsibilities", "Requirements", "About us", "Benefits", "Qualifications"};

/* Products of the demo shop (the products and images tables). */
static const char *const demo_brands[] = {
    "Acme", "Nordlys", "Kestrel", "Bäckerei Wolf", "Maison Lumière", "Tanuki", "Orbit",
    "Fjällräv", "Pequeño Taller", "Brightwood", "Ironleaf", "Sakura & Co"};
static const char *const demo_goods[] = {
    "Backpack", "Desk Lamp", "Coffee Grinder", "Rain Jacket", "Water Bottle", "Notebook",
    "Headphones", "Chef's Knife", "Yoga Mat", "Tea Kettle", "Bike Light", "Wool Scarf",
    "Cutting Board", "Alarm Clock", "Phone Case", "Espresso Cup Set"};
static const char *const demo_colours[] = {
    "Black", "White", "Navy", "Forest Green", "Crème", "Rouge", "Slate Grey", "Sunflower"};
static const char *const demo_currencies[] = {"EUR", "EUR", "EUR", "USD", "GBP"};
static const char *const demo_conditions[] = {"new", "new", "new", "new", "refurbished", "used"};
/* Page names with a space or a non-ASCII letter: a feed must percent-encode them. */
static const char *const demo_slugs[] = {
    "backpack", "lamp", "grinder", "jacket", "bottle", "notebook", "café-crème",
    "größe-m", "déjà vu", "sale 50%"};

/* ------------------------------------------------------------------------ */
/* Templated text                                                           */

/* Sentences and salaries are written as templates, close to the f-strings of
 * make_jobs_db.py, so the two generators can be compared by eye:
 *   {adj} {noun} ...   a word drawn from that list
 *   {12-90}            a number drawn from that range
 *   {lo} {hi} {h}      the salary figures drawn for the row */
static const char *const demo_sentences[] = {
    "You will {verb} and {verb} the {noun} for our {adj} {noun}.",
    "Strong knowledge of {skill}, {skill} or {skill} is a plus.",
    "We are a {adj}, {adj} {noun} looking for {adj} people.",
    "Work closely with the {noun} to {verb} every {noun} on time.",
    "{1-12}+ years of {skill} experience; {frag}.",
    "Help us {verb} a {adj} {noun} & {verb} the {noun} every day.",
    "Benefits include {perk}, {perk} and {perk}.",
    "Ability to {verb} {2-40} {noun}s per week in a {adj} setting.",
    "Report to {person}, our {adj} {noun} lead, and {verb} {3-90} {noun}s.",
    "Since {1950-2022} we have served {2-900}0 {noun}s in {2-60} countries.",
    "Shift: {5-11}am-{1-11}pm, {shift}; {perk}.",
    "Must {verb} {skill} and {skill} {noun}s ({adj}, {adj}, {adj}).",
};
/* Forms past the templates: one or two runs of loose prose. */
#define DEMO_PROSE_FORMS 2

static const char *const demo_salaries[] = {
    "${lo},000 - ${hi},000 per year", "${lo}k-${hi}k", "€{lo}.000 – €{hi}.000 brutto/Jahr",
    "£{lo},000 to £{hi},000 + benefits", "${h}/hr", "Competitive & DOE", "¥{lo}0万〜{hi}0万"};

typedef struct demo_list {
    const char *name;
    size_t name_len;
    const char *const *words;
    size_t count;
} demo_list;

#define DEMO_LIST(name, words) {name, sizeof(name) - 1, words, DEMO_COUNT(words)}
static const demo_list demo_lists[] = {
    DEMO_LIST("adj", demo_adj),         DEMO_LIST("noun", demo_noun),
    DEMO_LIST("verb", demo_verb),       DEMO_LIST("skill", demo_skill),
    DEMO_LIST("frag", demo_fragments),  DEMO_LIST("perk", demo_perks),
    DEMO_LIST("person", demo_people),   DEMO_LIST("shift", demo_shifts),
};

typedef struct demo_salary_vars {
    uint64_t lo, hi, h;
} demo_salary_vars;

/* Parses "12-90" (the inside of a range tag); 0 if it is not one. */
static int demo_parse_range(const char *s, size_t n, uint64_t *lo, uint64_t *hi)
{
    uint64_t v[2] = {0, 0};
    size_t k = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            v[k] = v[k] * 10 + (uint64_t)(s[i] - '0');
            digits++;
        } else if (s[i] == '-' && k == 0 && digits > 0) {
            k = 1;
            digits = 0;
        } else {
            return 0;
        }
    }
    if (k != 1 || digits == 0 || v[1] < v[0])
        return 0;
    *lo = v[0];
    *hi = v[1];
    return 1;
}

static int demo_tag_is(const char *tag, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(tag, name, n) == 0;
}

/* Expands template t into b. A tag that names nothing is copied as it is:
 * the templates are ours, so that only shows a typo, never a crash. */
static void demo_expand(demo_buf *b, demo_rng *r, const char *t, const demo_salary_vars *vars)
{
    for (;;) {
        const char *open = strchr(t, '{');
        const char *close = open ? strchr(open, '}') : NULL;
        if (!close) {
            demo_puts(b, t);
            return;
        }
        demo_put(b, t, (size_t)(open - t));
        const char *tag = open + 1;
        size_t n = (size_t)(close - tag);
        uint64_t lo, hi;
        int done = 0;
        if (demo_parse_range(tag, n, &lo, &hi)) {
            demo_put_num(b, demo_range(r, lo, hi), 0);
            done = 1;
        } else if (vars) {
            const uint64_t *v = demo_tag_is(tag, n, "lo")   ? &vars->lo
                                : demo_tag_is(tag, n, "hi") ? &vars->hi
                                : demo_tag_is(tag, n, "h")  ? &vars->h
                                                            : NULL;
            if (v) {
                demo_put_num(b, *v, 0);
                done = 1;
            }
        }
        for (size_t i = 0; !done && i < DEMO_COUNT(demo_lists); i++) {
            const demo_list *l = &demo_lists[i];
            if (l->name_len == n && memcmp(tag, l->name, n) == 0) {
                demo_puts(b, l->words[demo_below(r, l->count)]);
                done = 1;
            }
        }
        if (!done)
            demo_put(b, open, (size_t)(close - open) + 1);
        t = close + 1;
    }
}

/* A word of loose prose: glue words, adjectives, nouns and verbs alike. */
static const char *demo_prose_word(demo_rng *r)
{
    uint64_t i = demo_below(r, DEMO_COUNT(demo_adj) + DEMO_COUNT(demo_noun) +
                                   DEMO_COUNT(demo_verb) + DEMO_COUNT(demo_glue));
    if (i < DEMO_COUNT(demo_adj))
        return demo_adj[i];
    i -= DEMO_COUNT(demo_adj);
    if (i < DEMO_COUNT(demo_noun))
        return demo_noun[i];
    i -= DEMO_COUNT(demo_noun);
    if (i < DEMO_COUNT(demo_verb))
        return demo_verb[i];
    return demo_glue[i - DEMO_COUNT(demo_verb)];
}

/* Between lo and hi words of prose; the first letter upper-cased when asked
 * (every word is lower-case ASCII, so that is one byte). */
static void demo_prose(demo_buf *b, demo_rng *r, uint64_t lo, uint64_t hi, int capital)
{
    uint64_t words = demo_range(r, lo, hi);
    size_t start = b->len;
    for (uint64_t w = 0; w < words; w++) {
        if (w > 0)
            demo_put(b, " ", 1);
        demo_puts(b, demo_prose_word(r));
    }
    if (capital && b->len > start && b->p[start] >= 'a' && b->p[start] <= 'z')
        b->p[start] = (char)(b->p[start] - 'a' + 'A');
}

static void demo_sentence(demo_buf *b, demo_rng *r)
{
    uint64_t form = demo_below(r, DEMO_COUNT(demo_sentences) + DEMO_PROSE_FORMS);
    if (form < DEMO_COUNT(demo_sentences)) {
        demo_expand(b, r, demo_sentences[form], NULL);
        return;
    }
    demo_prose(b, r, 6, 16, 1);
    if (form == DEMO_COUNT(demo_sentences) + 1) {
        demo_put(b, ", ", 2);
        demo_prose(b, r, 3, 9, 0);
    }
    demo_put(b, ".", 1);
}

/* ------------------------------------------------------------------------ */
/* Rows                                                                     */

/* A text column: p == NULL stands for SQL NULL. */
typedef struct demo_text {
    const char *p;
    size_t n;
} demo_text;

static demo_text demo_text_of(const char *s)
{
    demo_text t = {s, s ? strlen(s) : 0};
    return t;
}

static demo_text demo_text_buf(const demo_buf *b)
{
    demo_text t = {b->p, b->len};
    return t;
}

/* Company `cid` alone from (seed, cid): its own PRNG stream, so a job can
 * name its company without a table of every name. Writes the name, and the
 * URL unless the company has none (url->p set to NULL). */
static void demo_company(uint64_t seed, uint64_t cid, demo_buf *name, demo_text *url,
                         demo_buf *url_buf)
{
    demo_rng r;
    demo_rng_seed(&r, seed, cid);

    name->len = 0;
    if (demo_chance(&r, 30)) {
        demo_puts(name, DEMO_PICK(&r, demo_co_special));
    } else {
        demo_puts(name, DEMO_PICK(&r, demo_co_a));
        demo_put(name, " ", 1);
        demo_puts(name, DEMO_PICK(&r, demo_co_b));
        const char *suffix = DEMO_PICK(&r, demo_co_suffix);
        if (*suffix) {
            demo_put(name, " ", 1);
            demo_puts(name, suffix);
        }
    }

    /* The host name keeps the ASCII letters and digits of the name; names
     * with none (the CJK ones) fall back to the company number. */
    url_buf->len = 0;
    demo_puts(url_buf, "https://www.");
    size_t slug_start = url_buf->len;
    for (size_t i = 0; i < name->len; i++) {
        char c = name->p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            demo_put(url_buf, &c, 1);
    }
    if (url_buf->len == slug_start) {
        demo_puts(url_buf, "co");
        demo_put_num(url_buf, cid, 0);
    }
    demo_puts(url_buf, ".com/careers?src=feed&company=");
    demo_put_num(url_buf, cid, 0);
    demo_puts(url_buf, "&lang=en");
    *url = demo_chance(&r, 100) ? demo_text_of(NULL) : demo_text_buf(url_buf);

    if (demo_chance(&r, 200)) {
        demo_puts(name, " #");
        demo_put_num(name, cid, 0);
    }
}

/* The HTML fragment of a job: a lead paragraph, then paragraphs, lists,
 * headings and links until a drawn length of 1000-2800 bytes is passed.
 * Title and company go in unescaped, as the reference generator does. */
static void demo_description(demo_buf *b, demo_rng *r, const demo_buf *title,
                             const demo_buf *company, const char *city)
{
    uint64_t target = demo_range(r, 1000, 2800);
    demo_puts(b, "<p><strong>");
    demo_put(b, title->p, title->len);
    demo_puts(b, "</strong> at ");
    demo_put(b, company->p, company->len);
    if (city) {
        demo_puts(b, " in ");
        demo_puts(b, city);
    }
    demo_puts(b, ".</p>");

    while (b->len < target && b->cap - b->len > DEMO_DESC_PART_MAX) {
        uint64_t kind = demo_below(r, 100);
        if (kind < 45) {
            uint64_t n = demo_range(r, 2, 5);
            demo_puts(b, "<p>");
            for (uint64_t i = 0; i < n; i++) {
                if (i > 0)
                    demo_put(b, " ", 1);
                demo_sentence(b, r);
            }
            demo_puts(b, "</p>");
        } else if (kind < 80) {
            uint64_t n = demo_range(r, 3, 6);
            demo_puts(b, "<ul>");
            for (uint64_t i = 0; i < n; i++) {
                demo_puts(b, "<li>");
                demo_sentence(b, r);
                demo_puts(b, "</li>");
            }
            demo_puts(b, "</ul>");
        } else if (kind < 90) {
            demo_puts(b, "<h3>");
            demo_puts(b, DEMO_PICK(r, demo_headings));
            demo_puts(b, "</h3>");
        } else {
            demo_puts(b, "<p>Apply at <a href=\"https://careers.example.com/");
            demo_put_num(b, demo_range(r, 1, 99999), 0);
            demo_puts(b, "?ref=feed&amp;lang=en\">our site</a> &mdash; ");
            demo_puts(b, DEMO_PICK(r, demo_fragments));
            demo_puts(b, ".</p>");
        }
    }
    if (demo_chance(r, 10)) {
        demo_puts(b, "<p>");
        demo_puts(b, DEMO_PICK(r, demo_emoji));
        demo_puts(b, " Join us!</p>");
    }
}

/* ------------------------------------------------------------------------ */
/* SQLite                                                                   */

static const char demo_schema[] =
    "CREATE TABLE companies (\n"
    "  id   INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  url  TEXT\n"
    ");\n"
    "CREATE TABLE jobs (\n"
    "  id              INTEGER PRIMARY KEY,\n"
    "  reference       TEXT NOT NULL UNIQUE,\n"
    "  site            TEXT NOT NULL,\n"
    "  title           TEXT NOT NULL,\n"
    "  company_id      INTEGER NOT NULL REFERENCES companies(id),\n"
    "  url             TEXT NOT NULL,\n"
    "  city            TEXT,\n"
    "  state           TEXT,\n"
    "  postal_code     TEXT,\n"
    "  country         TEXT NOT NULL,\n"
    "  category        TEXT,\n"
    "  job_type        TEXT,\n"
    "  salary          TEXT,\n"
    "  description     TEXT NOT NULL,\n"
    "  posted_at       TEXT NOT NULL,\n"
    "  is_active       INTEGER NOT NULL\n"
    ");\n"
    /* The child tables the built-in formats read (templates/): a job's
     * places (Indeed wants one <job> per location), a shop's products and
     * their images (Google Merchant). Column types that mean the same on
     * PostgreSQL and MariaDB (tests/ref/load_demo.sh copies them there):
     * `condition` is a reserved word of MariaDB, hence item_condition. */
    "CREATE TABLE locations (\n"
    "  job_id          INTEGER NOT NULL REFERENCES jobs(id),\n"
    "  id              INTEGER PRIMARY KEY,\n"
    "  city            TEXT NOT NULL,\n"
    "  state           TEXT,\n"
    "  postal_code     TEXT,\n"
    "  country         TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE products (\n"
    "  id              INTEGER PRIMARY KEY,\n"
    "  sku             TEXT NOT NULL UNIQUE,\n"
    "  title           TEXT NOT NULL,\n"
    "  description     TEXT NOT NULL,\n"
    "  price           NUMERIC(10,2) NOT NULL,\n"
    "  currency        TEXT NOT NULL,\n"
    "  availability    TEXT NOT NULL,\n"
    "  item_condition  TEXT NOT NULL,\n"
    "  link            TEXT NOT NULL,\n"
    "  image_link      TEXT NOT NULL,\n"
    "  updated_at      TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE images (\n"
    "  product_id      INTEGER NOT NULL REFERENCES products(id),\n"
    "  pos             INTEGER NOT NULL,\n"
    "  url             TEXT NOT NULL,\n"
    "  PRIMARY KEY (product_id, pos)\n"
    ");\n";

/* The index of make_jobs_db.py. Equality on both columns leaves the rowid as
 * the order inside the index, so the feed query walks jobs in id order
 * without a sort. It is made before the rows, unlike there: jobs arrive in
 * id order, so each entry lands at the end of one of four runs (cheap), while
 * building it afterwards would read the whole table back. */
static const char demo_index[] = "CREATE INDEX jobs_site_active ON jobs(site, is_active);"
                                 "CREATE INDEX locations_job ON locations(job_id, id);";

static void demo_errf(char *errbuf, size_t errlen, const char *fmt, ...) DEMO_PRINTF(3, 4);

static void demo_errf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static int demo_bind_text(sqlite3_stmt *st, int col, demo_text t)
{
    if (!t.p)
        return sqlite3_bind_null(st, col);
    /* Every value is far below INT_MAX (a description is under 8 KB). */
    return sqlite3_bind_text(st, col, t.p, (int)t.n, SQLITE_STATIC);
}

/* Runs a bound statement that returns no row, and readies it for the next. */
static int demo_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int rc2 = sqlite3_reset(st);
    return rc == SQLITE_DONE ? rc2 : rc;
}

static int demo_insert_companies(sqlite3_stmt *st, uint64_t count, uint64_t seed)
{
    char name_mem[256], url_mem[256];
    demo_buf name = demo_buf_on(name_mem, sizeof name_mem);
    demo_buf url_buf = demo_buf_on(url_mem, sizeof url_mem);
    for (uint64_t cid = 1; cid <= count; cid++) {
        demo_text url;
        demo_company(seed, cid, &name, &url, &url_buf);
        int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)cid);
        if (rc == SQLITE_OK)
            rc = demo_bind_text(st, 2, demo_text_buf(&name));
        if (rc == SQLITE_OK)
            rc = demo_bind_text(st, 3, url);
        if (rc == SQLITE_OK)
            rc = demo_step(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Makes and inserts job `jid`. The proportions are those of DATASET.md:
 * 90 % 'justjobs', 95 % active, 40 % no salary, a few NULL places,
 * categories and types. */
/* The locations of the jobs, drawn from a stream of their own so that the
 * jobs table is the same with or without them. */
typedef struct demo_locs {
    sqlite3_stmt *st;
    demo_rng r;
    uint64_t next_id;
} demo_locs;

/* One to three places for job `jid`: the first is the job's own place when
 * it has one (a job with no city gets a drawn one: every location has a
 * city, as Indeed requires), the others different cities. */
static int demo_insert_locations(demo_locs *lc, uint64_t jid, const demo_place *own, int has_city)
{
    uint64_t n = demo_range(&lc->r, 1, 3);
    size_t used[3];
    for (uint64_t k = 0; k < n; k++) {
        size_t pi;
        if (k == 0 && has_city) {
            pi = (size_t)(own - demo_places);
        } else {
            int again;
            do { /* distinct cities: at most 3 of 24 taken, this ends quickly */
                pi = (size_t)demo_below(&lc->r, DEMO_COUNT(demo_places));
                again = 0;
                for (uint64_t j = 0; j < k; j++)
                    again |= used[j] == pi;
            } while (again);
        }
        used[k] = pi;
        const demo_place *pl = &demo_places[pi];
        char postal_mem[16];
        demo_buf postal = demo_buf_on(postal_mem, sizeof postal_mem);
        demo_puts(&postal, pl->postal_prefix);
        demo_put_num(&postal, demo_range(&lc->r, 0, 99), 2);
        int rc = sqlite3_bind_int64(lc->st, 1, (sqlite3_int64)jid);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(lc->st, 2, (sqlite3_int64)lc->next_id++);
        if (rc == SQLITE_OK)
            rc = demo_bind_text(lc->st, 3, demo_text_of(pl->city));
        if (rc == SQLITE_OK)
            rc = demo_bind_text(lc->st, 4, demo_text_of(pl->state));
        if (rc == SQLITE_OK)
            rc = demo_bind_text(lc->st, 5, demo_text_buf(&postal));
        if (rc == SQLITE_OK)
            rc = demo_bind_text(lc->st, 6, demo_text_of(pl->country));
        if (rc == SQLITE_OK)
            rc = demo_step(lc->st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int demo_insert_job(sqlite3_stmt *st, demo_rng *r, uint64_t jid, uint64_t companies,
                           uint64_t seed, demo_locs *lc)
{
    char title_mem[256], ref_mem[48], url_mem[256], postal_mem[16], salary_mem[96];
    char posted_mem[32], co_name_mem[256], co_url_mem[256], desc_mem[DEMO_DESC_MAX];
    demo_buf title = demo_buf_on(title_mem, sizeof title_mem);
    demo_buf ref = demo_buf_on(ref_mem, sizeof ref_mem);
    demo_buf url = demo_buf_on(url_mem, sizeof url_mem);
    demo_buf postal = demo_buf_on(postal_mem, sizeof postal_mem);
    demo_buf salary = demo_buf_on(salary_mem, sizeof salary_mem);
    demo_buf posted = demo_buf_on(posted_mem, sizeof posted_mem);
    demo_buf co_name = demo_buf_on(co_name_mem, sizeof co_name_mem);
    demo_buf co_url_buf = demo_buf_on(co_url_mem, sizeof co_url_mem);
    demo_buf desc = demo_buf_on(desc_mem, sizeof desc_mem);

    uint64_t kind = demo_below(r, 100);
    if (kind < 5) {
        demo_puts(&title, DEMO_PICK(r, demo_special_titles));
    } else if (kind < 8) {
        demo_puts(&title, DEMO_PICK(r, demo_accented_titles));
    } else if (kind < 10) {
        demo_puts(&title, DEMO_PICK(r, demo_cjk_titles));
    } else {
        const char *seniority = DEMO_PICK(r, demo_seniority);
        if (*seniority) {
            demo_puts(&title, seniority);
            demo_put(&title, " ", 1);
        }
        demo_puts(&title, DEMO_PICK(r, demo_roles));
    }
    if (demo_chance(r, 10)) {
        demo_put(&title, " ", 1);
        demo_puts(&title, DEMO_PICK(r, demo_emoji));
    }

    uint64_t cid = demo_range(r, 1, companies);
    demo_text co_url;
    demo_company(seed, cid, &co_name, &co_url, &co_url_buf);

    const demo_place *place = &DEMO_PICK(r, demo_places);
    demo_text city = demo_text_of(place->city), state = demo_text_of(place->state);
    demo_puts(&postal, place->postal_prefix);
    demo_put_num(&postal, demo_range(r, 0, 99), 2);
    demo_text postal_code = demo_text_buf(&postal);
    if (demo_chance(r, 30))
        city = state = postal_code = demo_text_of(NULL);

    /* Unique through the job number; the random tail looks like a real code. */
    demo_puts(&ref, "JJ-");
    demo_put_num(&ref, jid, 8);
    demo_put(&ref, "-", 1);
    demo_put_hex(&ref, demo_below(r, 1u << 24), 6);

    const char *site = demo_chance(r, 900) ? "justjobs" : "otherjobs";
    demo_puts(&url, "https://www.justjobs.example/jobs/");
    demo_put_num(&url, jid, 0);
    demo_puts(&url, "?ref=");
    demo_put(&url, ref.p, ref.len);
    demo_puts(&url, "&src=");
    demo_puts(&url, site);
    demo_puts(&url, "&utm_source=feed&utm_medium=xml");

    demo_text category = demo_chance(r, 50) ? demo_text_of(NULL)
                                            : demo_text_of(DEMO_PICK(r, demo_categories));
    demo_text job_type = demo_chance(r, 50) ? demo_text_of(NULL)
                                            : demo_text_of(DEMO_PICK(r, demo_job_types));

    demo_text salary_text = demo_text_of(NULL);
    if (!demo_chance(r, 400)) {
        demo_salary_vars v;
        v.lo = demo_range(r, 25, 150);
        v.hi = v.lo + demo_range(r, 5, 60);
        v.h = demo_range(r, 15, 80);
        demo_expand(&salary, r, DEMO_PICK(r, demo_salaries), &v);
        salary_text = demo_text_buf(&salary);
    }

    demo_description(&desc, r, &title, &co_name, city.p);

    /* Days stop at 28 so every month is valid without a calendar. */
    demo_puts(&posted, "2024-");
    demo_put_num(&posted, demo_range(r, 1, 12), 2);
    demo_put(&posted, "-", 1);
    demo_put_num(&posted, demo_range(r, 1, 28), 2);
    demo_put(&posted, "T", 1);
    demo_put_num(&posted, demo_range(r, 0, 23), 2);
    demo_put(&posted, ":", 1);
    demo_put_num(&posted, demo_range(r, 0, 59), 2);
    demo_put(&posted, ":", 1);
    demo_put_num(&posted, demo_range(r, 0, 59), 2);
    demo_put(&posted, "Z", 1);

    int active = demo_chance(r, 950);

    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)jid);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 2, demo_text_buf(&ref));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 3, demo_text_of(site));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 4, demo_text_buf(&title));
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)cid);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 6, demo_text_buf(&url));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 7, city);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 8, state);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 9, postal_code);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 10, demo_text_of(place->country));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 11, category);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 12, job_type);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 13, salary_text);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 14, demo_text_buf(&desc));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 15, demo_text_buf(&posted));
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 16, active);
    /* SQLITE_STATIC: the buffers above live until the step is done. */
    if (rc == SQLITE_OK)
        rc = demo_step(st);
    if (rc == SQLITE_OK)
        rc = demo_insert_locations(lc, jid, place, city.p != NULL);
    return rc;
}

/* A date-time of 2025 in SQLite's own text form ("2025-03-01 10:00:00", no
 * zone: UTC, the formatters' rule); days stop at 28 as the jobs' do. */
static void demo_put_datetime(demo_buf *b, demo_rng *r)
{
    demo_puts(b, "2025-");
    demo_put_num(b, demo_range(r, 1, 12), 2);
    demo_put(b, "-", 1);
    demo_put_num(b, demo_range(r, 1, 28), 2);
    demo_put(b, " ", 1);
    demo_put_num(b, demo_range(r, 0, 23), 2);
    demo_put(b, ":", 1);
    demo_put_num(b, demo_range(r, 0, 59), 2);
    demo_put(b, ":", 1);
    demo_put_num(b, demo_range(r, 0, 59), 2);
}

/* Product `pid` and its 0-12 images. Titles are mostly short, some over
 * Merchant's 150 characters; descriptions are HTML (entities, lists, now and
 * then a <script>), some over its 5000; prices have 0 to 2 decimals. */
static int demo_insert_product(sqlite3_stmt *st, sqlite3_stmt *img_st, demo_rng *r, uint64_t pid)
{
    char sku_mem[32], title_mem[512], price_mem[24], link_mem[160], img_mem[160];
    char upd_mem[32], desc_mem[2 * DEMO_DESC_MAX]; /* some pass Merchant's 5000 */
    demo_buf sku = demo_buf_on(sku_mem, sizeof sku_mem);
    demo_buf title = demo_buf_on(title_mem, sizeof title_mem);
    demo_buf price = demo_buf_on(price_mem, sizeof price_mem);
    demo_buf link = demo_buf_on(link_mem, sizeof link_mem);
    demo_buf img = demo_buf_on(img_mem, sizeof img_mem);
    demo_buf upd = demo_buf_on(upd_mem, sizeof upd_mem);
    demo_buf desc = demo_buf_on(desc_mem, sizeof desc_mem);

    demo_puts(&sku, "SKU-");
    demo_put_num(&sku, pid, 6);
    demo_put(&sku, "-", 1);
    demo_put_hex(&sku, demo_below(r, 1u << 16), 4);

    const char *brand = DEMO_PICK(r, demo_brands), *good = DEMO_PICK(r, demo_goods);
    demo_puts(&title, brand);
    demo_put(&title, " ", 1);
    demo_puts(&title, good);
    demo_puts(&title, ", ");
    demo_puts(&title, DEMO_PICK(r, demo_colours));
    if (demo_chance(r, 30)) { /* a title stuffed past 150 characters */
        while (title.len < 200) {
            demo_put(&title, " ", 1);
            demo_puts(&title, DEMO_PICK(r, demo_adj));
        }
    }
    if (demo_chance(r, 20)) {
        demo_put(&title, " ", 1);
        demo_puts(&title, DEMO_PICK(r, demo_emoji));
    }

    uint64_t target = demo_chance(r, 30) ? demo_range(r, 5200, 6500) : demo_range(r, 200, 1200);
    demo_puts(&desc, "<p><strong>");
    demo_puts(&desc, brand);
    demo_puts(&desc, "</strong> ");
    demo_puts(&desc, good);
    demo_puts(&desc, " &amp; more &#8211; made to last.</p>");
    while (desc.len < target && desc.cap - desc.len > DEMO_DESC_PART_MAX) {
        uint64_t kind = demo_below(r, 100);
        if (kind < 55) {
            demo_puts(&desc, "<p>");
            demo_sentence(&desc, r);
            demo_put(&desc, " ", 1);
            demo_sentence(&desc, r);
            demo_puts(&desc, "</p>");
        } else if (kind < 90) {
            demo_puts(&desc, "<ul><li>");
            demo_sentence(&desc, r);
            demo_puts(&desc, "</li><li>Size &lt;M&gt; or &quot;L&quot;</li></ul>");
        } else if (kind < 97) {
            demo_puts(&desc, "<h3>");
            demo_puts(&desc, DEMO_PICK(r, demo_headings));
            demo_puts(&desc, "</h3>");
        } else {
            demo_puts(&desc, "<script>track('view');</script><br>");
        }
    }

    uint64_t cents = demo_range(r, 199, 49999);
    demo_put_num(&price, cents / 100, 0);
    if (cents % 100 != 0) { /* 12.5 and 12.50 alike: text as a shop exports it */
        demo_put(&price, ".", 1);
        demo_put_num(&price, cents % 10 ? cents % 100 : cents % 100 / 10, cents % 10 ? 2 : 1);
    }

    demo_puts(&link, "https://shop.example/p/");
    demo_puts(&link, DEMO_PICK(r, demo_slugs));
    demo_put(&link, "-", 1);
    demo_put_num(&link, pid, 0);
    demo_puts(&link, "?utm_source=feed&utm_medium=merchant");

    demo_puts(&img, "https://img.shop.example/");
    demo_put_num(&img, pid, 0);
    demo_puts(&img, demo_chance(r, 100) ? "/main image.jpg" : "/main.jpg");

    demo_put_datetime(&upd, r);
    const char *avail = demo_chance(r, 850) ? "in_stock" : "out_of_stock";

    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)pid);
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 2, demo_text_buf(&sku));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 3, demo_text_buf(&title));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 4, demo_text_buf(&desc));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 5, demo_text_buf(&price));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 6, demo_text_of(DEMO_PICK(r, demo_currencies)));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 7, demo_text_of(avail));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 8, demo_text_of(DEMO_PICK(r, demo_conditions)));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 9, demo_text_buf(&link));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 10, demo_text_buf(&img));
    if (rc == SQLITE_OK)
        rc = demo_bind_text(st, 11, demo_text_buf(&upd));
    if (rc == SQLITE_OK)
        rc = demo_step(st);

    /* 0-12 more images: more than Merchant's 10 additional ones at times. */
    uint64_t nimg = demo_range(r, 0, 12);
    for (uint64_t k = 1; rc == SQLITE_OK && k <= nimg; k++) {
        img.len = 0;
        demo_puts(&img, "https://img.shop.example/");
        demo_put_num(&img, pid, 0);
        demo_puts(&img, "/view-");
        demo_put_num(&img, k, 2);
        demo_puts(&img, demo_chance(r, 50) ? "-détail.jpg" : ".jpg");
        rc = sqlite3_bind_int64(img_st, 1, (sqlite3_int64)pid);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(img_st, 2, (sqlite3_int64)k);
        if (rc == SQLITE_OK)
            rc = demo_bind_text(img_st, 3, demo_text_buf(&img));
        if (rc == SQLITE_OK)
            rc = demo_step(img_st);
    }
    return rc;
}

/* Fills the database file `file` (empty, just created). `path` is the name
 * the caller knows, used in messages. */
static sf_status demo_fill(const char *file, const char *path, uint64_t rows, uint64_t seed,
                           const volatile sig_atomic_t *cancel, char *errbuf, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *co_st = NULL, *job_st = NULL, *pr_st = NULL, *img_st = NULL;
    demo_locs lc = {NULL, {{0}}, 1};
    const char *step = "open";

    int rc = sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, NULL);
    /* No journal: a failed build is deleted, never rolled back. */
    if (rc == SQLITE_OK) {
        step = "configure";
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                          "BEGIN;",
                          NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        step = "create tables in";
        rc = sqlite3_exec(db, demo_schema, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, demo_index, NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
        step = "prepare inserts for";
        rc = sqlite3_prepare_v3(db, "INSERT INTO companies VALUES (?1, ?2, ?3)", -1,
                                SQLITE_PREPARE_PERSISTENT, &co_st, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db,
                                "INSERT INTO jobs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                                -1, SQLITE_PREPARE_PERSISTENT, &job_st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db, "INSERT INTO locations VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1,
                                SQLITE_PREPARE_PERSISTENT, &lc.st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db,
                                "INSERT INTO products VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                "?9, ?10, ?11)",
                                -1, SQLITE_PREPARE_PERSISTENT, &pr_st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db, "INSERT INTO images VALUES (?1, ?2, ?3)", -1,
                                SQLITE_PREPARE_PERSISTENT, &img_st, NULL);

    /* One company per 50 jobs, at least 100, as make_jobs_db.py. */
    uint64_t companies = rows / 50 > 100 ? rows / 50 : 100, jobs_done = 0;
    if (rc == SQLITE_OK) {
        step = "insert companies into";
        rc = demo_insert_companies(co_st, companies, seed);
    }
    if (rc == SQLITE_OK) {
        step = "insert jobs into";
        demo_rng r;
        demo_rng_seed(&r, seed, 0);
        demo_rng_seed(&lc.r, seed, DEMO_STREAM_LOCATIONS);
        for (uint64_t jid = 1; jid <= rows && rc == SQLITE_OK; jid++) {
            if (cancel && *cancel)
                break;
            rc = demo_insert_job(job_st, &r, jid, companies, seed, &lc);
            if (rc == SQLITE_OK)
                jobs_done = jid;
        }
    }
    /* One product per 10 jobs, at least 100 (and their images). */
    uint64_t products = rows / 10 > 100 ? rows / 10 : 100;
    if (rc == SQLITE_OK && !(cancel && *cancel)) {
        step = "insert products into";
        demo_rng r;
        demo_rng_seed(&r, seed, DEMO_STREAM_PRODUCTS);
        for (uint64_t pid = 1; pid <= products && rc == SQLITE_OK; pid++) {
            if (cancel && *cancel)
                break;
            rc = demo_insert_product(pr_st, img_st, &r, pid);
        }
    }
    if (rc == SQLITE_OK && cancel && *cancel) {
        demo_errf(errbuf, errlen, "demo database %s: cancelled after %llu rows", path,
                  (unsigned long long)jobs_done);
        sqlite3_finalize(co_st);
        sqlite3_finalize(job_st);
        sqlite3_finalize(lc.st);
        sqlite3_finalize(pr_st);
        sqlite3_finalize(img_st);
        sqlite3_close(db);
        return SF_ERR_CANCELLED;
    }
    if (rc == SQLITE_OK) {
        step = "commit";
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }

    if (rc != SQLITE_OK)
        demo_errf(errbuf, errlen, "demo database %s: cannot %s: %s", path, step,
                  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(co_st);
    sqlite3_finalize(job_st);
    sqlite3_finalize(lc.st);
    sqlite3_finalize(pr_st);
    sqlite3_finalize(img_st);
    int close_rc = sqlite3_close(db);
    if (rc == SQLITE_OK && close_rc != SQLITE_OK) {
        demo_errf(errbuf, errlen, "demo database %s: cannot close: %s", path,
                  sqlite3_errstr(close_rc));
        rc = close_rc;
    }
    return rc == SQLITE_OK ? SF_OK : SF_ERR_SOURCE;
}

sf_status demo_db_write(const char *file, const char *label, uint64_t rows, uint64_t seed,
                        const volatile sig_atomic_t *cancel, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (!file || !*file) {
        demo_errf(errbuf, errlen, "demo database: no file given");
        return SF_ERR_ARG;
    }
    if (!label)
        label = file;
    if (rows > DEMO_MAX_ROWS) {
        demo_errf(errbuf, errlen, "demo database %s: %llu rows is more than the %llu allowed",
                  label, (unsigned long long)rows, (unsigned long long)DEMO_MAX_ROWS);
        return SF_ERR_ARG;
    }
    return demo_fill(file, label, rows, seed, cancel, errbuf, errlen);
}
