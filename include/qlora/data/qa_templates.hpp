// qlora/data/qa_templates.hpp — the Japanese question and answer templates
// that turn one relationship of the knowledge graph into QA pairs.
//
// All wording lives here, as data; qa_generate.hpp only fills placeholders.
// Per relation type there are
//   - forward questions (asked about the start node: 「{start}は何を軽減しますか？」),
//   - reverse questions (asked about the end node: 「{end}を軽減する対策には…」),
//   - forward and reverse answer templates, and
//   - "practice" sentences that close an answer with what an engineer does
//     with the fact (the paper's answers run 370–380 characters; a lead
//     sentence plus two descriptions plus a practice sentence gets there).
// Every answer template starts from, or contains, {cite} — the volume and
// chapter (and section) of the standard — because the paper's judge gives its
// top score only to answers that cite the standard.
//
// Placeholders (all filled by qa_generate.hpp; an unknown one is an error
// that the tests catch):
//   {start} {end}            node names
//   {start_desc} {end_desc}  node descriptions as full sentences (or "")
//   {ends} {starts}          all ends of (start, type) / all starts of (type, end), 「、」-joined
//   {cite}                   the relation's citation: 河川砂防技術基準 <volume> <chapter> [<section>]
//   {see_also}               a sentence pointing at the other node's citation when it differs (or "")
//   {clause}                 a sentence naming the clause type (考え方/必須/標準/推奨/例示) when known (or "")
//   {practice}               one of the relation's practice sentences (which may use the names)
//
// Paraphrase variants (openers, closers, politer endings) are relation-free
// and widen the linguistic variety of questions when --paraphrases is on.
#pragma once

#include <span>
#include <string_view>

namespace qlora::data {

/// Templates for one relation type, optionally only for one end-node label
/// (HAS_CHAPTER from the Standard to a Volume reads differently from
/// Volume → Chapter). Lookup prefers the label-specific entry.
struct RelationTemplates {
  std::string_view relation;                       // e.g. "MITIGATES"
  std::string_view end_label;                      // "" = any end label
  std::span<const std::string_view> forward_questions;
  std::span<const std::string_view> reverse_questions;
  std::span<const std::string_view> forward_answers;
  std::span<const std::string_view> reverse_answers;
  std::span<const std::string_view> practices;
};

namespace templates {

using sv = std::string_view;

// ---------------------------------------------------------------- HAS_CHAPTER (Volume → Chapter)
inline constexpr sv kHasChapterFQ[] = {
    "{start}にはどのような章がありますか？",
    "{start}の{end}では何が定められていますか？",
    "{start}に含まれる{end}の概要を教えてください。",
    "{start}の中で{end}はどのような位置づけの章ですか？",
};
inline constexpr sv kHasChapterRQ[] = {
    "{end}は河川砂防技術基準のどの編に含まれていますか？",
    "{end}について規定しているのはどの編ですか？",
    "{end}の内容を確認するには、どの編を参照すればよいですか？",
};
inline constexpr sv kHasChapterFA[] = {
    "{cite}によれば、{start}には{ends}の章が設けられており、{end}はその一つです。{end_desc}{start_desc}{clause}{practice}",
    "{start}を構成する章のうち、{end}について説明します（{cite}）。{end_desc}{start}全体としては、{start_desc}{clause}{practice}",
};
inline constexpr sv kHasChapterRA[] = {
    "{end}は{start}に含まれる章です（{cite}）。{end_desc}{start_desc}{clause}{practice}",
    "{cite}として定められているとおり、{end}は{start}の一章です。{end_desc}この章を含む{start}については、{start_desc}{clause}{practice}",
};
inline constexpr sv kHasChapterP[] = {
    "実務では、まず{start}の章構成を把握し、{end}の目的と適用範囲を確認したうえで、その下の節や項に定められた具体的な規定を参照することが重要です。",
    "{end}の規定を適用する際は、同じ編の他の章との関係や、調査・計画・設計・維持管理の各段階との対応を意識して読むと、求められる内容を正しく理解できます。",
};

// ---------------------------------------------------------------- HAS_CHAPTER (Standard → Volume)
inline constexpr sv kHasVolumeFQ[] = {
    "{start}にはどのような編がありますか？",
    "{start}の{end}では何が扱われていますか？",
    "{start}における{end}の役割を教えてください。",
};
inline constexpr sv kHasVolumeRQ[] = {
    "{end}はどの技術基準の一部ですか？",
    "{end}は{start}の中でどのような位置づけですか？",
};
inline constexpr sv kHasVolumeFA[] = {
    "{cite}は、{start}を構成する編の一つです。{start}全体は{ends}から構成されています。{end_desc}{start_desc}{practice}",
    "{start}には{ends}があり、{end}はそのうちの一編です（{cite}）。{end_desc}{start_desc}{practice}",
};
inline constexpr sv kHasVolumeRA[] = {
    "{end}は{start}の一編です（{cite}）。{end_desc}{start_desc}{practice}",
    "{end}は、{start}を構成する{ends}のうちの一編です（{cite}）。{end_desc}{start_desc}{practice}",
};
inline constexpr sv kHasVolumeP[] = {
    "河川砂防技術基準は、調査・計画・設計・維持管理の各段階に対応する編で構成されており、{end}を参照する際も他の編との関係を踏まえて読むことが求められます。",
    "各編は章・節・項の階層で整理されているため、必要な規定を探すときは、まず{end}の章構成を確認し、該当する節や項へとたどると効率的です。",
};

// ---------------------------------------------------------------- HAS_SECTION (Chapter → Section)
inline constexpr sv kHasSectionFQ[] = {
    "{start}にはどのような節がありますか？",
    "{start}の{end}では何を定めていますか？",
    "{start}の{end}の内容を教えてください。",
};
inline constexpr sv kHasSectionRQ[] = {
    "{end}はどの章に含まれていますか？",
    "{end}はどの編・どの章の節ですか？",
    "{end}の規定は、どの章の一部として位置づけられていますか？",
};
inline constexpr sv kHasSectionFA[] = {
    "{cite}によれば、{start}には{ends}の節があり、{end}はその一つです。{end_desc}{start_desc}{clause}{practice}",
    "{start}を構成する節のうち、{end}について説明します（{cite}）。{end_desc}この節を含む章については、{start_desc}{clause}{practice}",
};
inline constexpr sv kHasSectionRA[] = {
    "{end}は{start}に含まれる節です（{cite}）。{end_desc}{start_desc}{clause}{practice}",
    "{cite}に示されるとおり、{end}は{start}の一節として定められています。{end_desc}{start_desc}{clause}{practice}",
};
inline constexpr sv kHasSectionP[] = {
    "節の規定を読む際は、上位の章で示された目的や基本方針を踏まえ、{end}の中の各項に定められた具体的な要件や手順とあわせて確認することが重要です。",
    "実務では、{end}の規定が調査・計画・設計・維持管理のどの段階で用いられるかを意識し、関連する他の節の規定とも整合をとることが求められます。",
};

// ---------------------------------------------------------------- HAS_ITEM (Section → Item)
inline constexpr sv kHasItemFQ[] = {
    "{start}にはどのような項目が定められていますか？",
    "{start}の{end}では何が規定されていますか？",
    "{start}の項目「{end}」の要点を教えてください。",
};
inline constexpr sv kHasItemRQ[] = {
    "{end}はどの節に属する規定ですか？",
    "{end}の根拠となる節と章を教えてください。",
    "{end}はどの節で定められていますか？",
};
inline constexpr sv kHasItemFA[] = {
    "{cite}によれば、{start}には{ends}の項目があり、{end}はその一つです。{end_desc}{start_desc}{clause}{practice}",
    "{start}の項目のうち、{end}について説明します（{cite}）。{end_desc}この項目を含む節については、{start_desc}{clause}{practice}",
};
inline constexpr sv kHasItemRA[] = {
    "{end}は{start}に属する項目です（{cite}）。{end_desc}{start_desc}{clause}{practice}",
    "{cite}において、{end}は{start}の項目として定められています。{end_desc}{start_desc}{clause}{practice}",
};
inline constexpr sv kHasItemP[] = {
    "項目の規定を適用する際は、それが必須・標準・推奨・例示のどれに当たるかを確認し、現場条件に応じて求められる水準を満たしているかを判断することが重要です。",
    "実務では、{end}の内容を節全体の趣旨と照らし合わせ、関連する調査結果や設計条件と矛盾しないように運用することが求められます。",
};

// ---------------------------------------------------------------- DESCRIBED_IN (Concept → Chapter/Section)
inline constexpr sv kDescribedInFQ[] = {
    "{start}については技術基準のどこに記載されていますか？",
    "{start}の考え方はどの章で説明されていますか？",
    "{start}に関する規定を確認するには、どこを参照すればよいですか？",
    "{start}は{end}でどのように扱われていますか？",
};
inline constexpr sv kDescribedInRQ[] = {
    "{end}ではどのような事項が説明されていますか？",
    "{end}で取り上げられている技術的な概念を教えてください。",
    "{end}に記載されている{start}の要点は何ですか？",
};
inline constexpr sv kDescribedInFA[] = {
    "{start}は、{cite}に記載されています。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{cite}で{start}が取り上げられています。記載箇所は{ends}です。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kDescribedInRA[] = {
    "{cite}では、{starts}などが説明されています。このうち{start}について述べると、{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{end}には{start}に関する記述があります（{cite}）。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kDescribedInP[] = {
    "{start}を実務で扱う際は、該当箇所の記述だけでなく、同じ章の前後の節に示された前提条件や関連する規定もあわせて確認することが重要です。",
    "{start}に関する判断では、記載箇所で示された考え方を出発点として、現地の条件や関連する調査・計画の結果を踏まえて具体的に検討することが求められます。",
};

// ---------------------------------------------------------------- DEFINED_IN (Concept → Section/Item)
inline constexpr sv kDefinedInFQ[] = {
    "{start}はどこで定義されていますか？",
    "{start}の定義を教えてください。",
    "技術基準における{start}の意味は何ですか？",
    "{start}という用語はどのように定義されていますか？",
};
inline constexpr sv kDefinedInRQ[] = {
    "{end}ではどのような用語が定義されていますか？",
    "{end}で定義されている{start}とは何ですか？",
};
inline constexpr sv kDefinedInFA[] = {
    "{start}は{cite}で定義されています。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{cite}によれば、{start}とは次のようなものです。{start_desc}この定義は{end}に示されています。{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kDefinedInRA[] = {
    "{cite}では、{starts}などの用語が定義されています。このうち{start}については、{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{end}で定義されている{start}について説明します（{cite}）。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kDefinedInP[] = {
    "用語の定義は、調査・計画・設計・維持管理の各段階で同じ意味で用いられることが前提となるため、報告書や設計図書でも{start}をこの定義どおりに使うことが重要です。",
    "{start}の定義を踏まえずに数値や基準を適用すると判断を誤るおそれがあるため、関連する節の規定とあわせて意味と適用範囲を確認することが求められます。",
};

// ---------------------------------------------------------------- SUBJECT_TO (Concept → Item/Concept)
inline constexpr sv kSubjectToFQ[] = {
    "{start}にはどのような規定が適用されますか？",
    "{start}が従うべき要求事項は何ですか？",
    "{start}は{end}の対象になりますか？",
    "{start}について遵守すべき基準を教えてください。",
};
inline constexpr sv kSubjectToRQ[] = {
    "{end}の対象となるものは何ですか？",
    "{end}はどのような施設や事項に適用されますか？",
};
inline constexpr sv kSubjectToFA[] = {
    "{cite}によれば、{start}は{ends}の対象となります。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{start}には{end}が適用されます（{cite}）。{end_desc}対象となる{start}については、{start_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kSubjectToRA[] = {
    "{cite}によれば、{end}の対象には{starts}があります。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}は{start}に適用されます（{cite}）。{end_desc}{start_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kSubjectToP[] = {
    "実務では、{start}が{end}の要件を満たしているかを計画・設計の段階から確認し、維持管理の段階でも点検や記録を通じて継続的に確かめることが重要です。",
    "規定の適用にあたっては、その位置づけ（必須・標準・推奨など）を確認し、現場条件によって異なる対応をとる場合はその理由を明確にしておくことが求められます。",
};

// ---------------------------------------------------------------- USED_IN (Concept → Concept)
inline constexpr sv kUsedInFQ[] = {
    "{start}は何に用いられますか？",
    "{start}はどのような場面で使われますか？",
    "{start}は{end}でどのように活用されますか？",
};
inline constexpr sv kUsedInRQ[] = {
    "{end}ではどのような情報や指標が用いられますか？",
    "{end}を行う際に使われるものは何ですか？",
    "{end}に{start}が必要とされるのはなぜですか？",
};
inline constexpr sv kUsedInFA[] = {
    "{cite}によれば、{start}は{ends}に用いられます。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{start}は{end}において重要な役割を果たします（{cite}）。{start_desc}これが用いられる{end}については、{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kUsedInRA[] = {
    "{cite}によれば、{end}には{starts}が用いられます。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}では{start}が用いられます（{cite}）。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kUsedInP[] = {
    "{start}の精度や前提条件は{end}の結果に直接影響するため、用いる値の根拠や算定方法を確認し、条件が変わった場合には見直すことが重要です。",
    "実務では、{end}の段階で{start}をどのように設定したかを記録し、後の段階で検証や更新ができるようにしておくことが求められます。",
};

// ---------------------------------------------------------------- REQUIRES (Concept → Concept)
inline constexpr sv kRequiresFQ[] = {
    "{start}には何が必要ですか？",
    "{start}の前提条件は何ですか？",
    "{start}に欠かせない事項を教えてください。",
    "{start}に{end}が求められるのはなぜですか？",
};
inline constexpr sv kRequiresRQ[] = {
    "{end}はどのような場面で必要とされますか？",
    "{end}を必要とする計画や施設は何ですか？",
};
inline constexpr sv kRequiresFA[] = {
    "{cite}によれば、{start}には{ends}が必要です。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{start}には{end}が欠かせません（{cite}）。{start_desc}必要となる{end}については、{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kRequiresRA[] = {
    "{cite}によれば、{end}は{starts}で必要とされます。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}は{start}の前提として求められます（{cite}）。{end_desc}{start_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kRequiresP[] = {
    "{end}が不十分なまま{start}の検討を進めると、後の段階で手戻りや安全性の不足が生じるおそれがあるため、必要な内容と精度をあらかじめ確認しておくことが重要です。",
    "実務では、{start}の検討に着手する前に{end}の実施状況と結果を確認し、不足がある場合は追加の調査や検討を行うことが求められます。",
};

// ---------------------------------------------------------------- AFFECTS (Concept → Concept)
inline constexpr sv kAffectsFQ[] = {
    "{start}は何に影響しますか？",
    "{start}がもたらす影響を教えてください。",
    "{start}は{end}にどのような影響を与えますか？",
};
inline constexpr sv kAffectsRQ[] = {
    "{end}に影響を与える要因は何ですか？",
    "{end}の変化を引き起こすものには何がありますか？",
    "{end}を検討する際に考慮すべき要因を教えてください。",
};
inline constexpr sv kAffectsFA[] = {
    "{cite}によれば、{start}は{ends}に影響を与えます。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{start}は{end}を左右する要因です（{cite}）。{start_desc}影響を受ける{end}については、{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kAffectsRA[] = {
    "{cite}によれば、{end}に影響を与える要因には{starts}があります。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}は{start}の影響を受けます（{cite}）。{end_desc}{start_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kAffectsP[] = {
    "実務では、{start}の状況を調査やモニタリングで把握し、{end}への影響を定量的に評価したうえで、計画や維持管理の方針に反映することが重要です。",
    "{start}と{end}の関係は流域の条件によって異なるため、現地の観測結果や過去の災害記録を踏まえて影響の程度を検討することが求められます。",
};

// ---------------------------------------------------------------- MITIGATES (Concept → Concept)
inline constexpr sv kMitigatesFQ[] = {
    "{start}は何を軽減しますか？",
    "{start}の効果を教えてください。",
    "{start}はどのような被害の軽減に役立ちますか？",
    "{start}は{end}をどのように軽減しますか？",
};
inline constexpr sv kMitigatesRQ[] = {
    "{end}を軽減する対策にはどのようなものがありますか？",
    "{end}による被害を抑えるにはどうすればよいですか？",
    "{end}への対策として有効な施設や手法は何ですか？",
};
inline constexpr sv kMitigatesFA[] = {
    "{cite}によれば、{start}は{ends}を軽減するための対策です。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "{start}は{end}の軽減に寄与します（{cite}）。{start_desc}軽減の対象となる{end}については、{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kMitigatesRA[] = {
    "{cite}によれば、{end}を軽減する対策には{starts}があります。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}への対策として、{start}が位置づけられています（{cite}）。{end_desc}{start_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kMitigatesP[] = {
    "対策の検討にあたっては、{end}の発生形態や想定される規模を把握したうえで、{start}の配置・規模・効果を評価し、他の対策と組み合わせて被害を総合的に軽減することが求められます。",
    "{start}は整備した後も点検と維持管理を継続し、所要の機能が保たれていることを確認する必要があります。効果が低下している場合は、補修や改良を検討します。",
};

// ---------------------------------------------------------------- PRECEDES (Concept/Item → Concept/Item)
inline constexpr sv kPrecedesFQ[] = {
    "{start}の次に行うべきことは何ですか？",
    "{start}の後にはどのような段階がありますか？",
    "{start}と{end}はどちらを先に行いますか？",
};
inline constexpr sv kPrecedesRQ[] = {
    "{end}の前に何を行う必要がありますか？",
    "{end}に先立って実施すべきことは何ですか？",
    "{end}を始める前提となる作業を教えてください。",
};
inline constexpr sv kPrecedesFA[] = {
    "{cite}によれば、{start}の後には{ends}を行います。{start_desc}{end_desc}{see_also}{clause}{practice}",
    "手順としては、{start}を先に行い、その結果を踏まえて{end}に進みます（{cite}）。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kPrecedesRA[] = {
    "{cite}によれば、{end}に先立って{starts}を行います。{end_desc}このうち{start}については、{start_desc}{see_also}{clause}{practice}",
    "{end}の前には{start}を実施します（{cite}）。{start_desc}{end_desc}{see_also}{clause}{practice}",
};
inline constexpr sv kPrecedesP[] = {
    "前の段階の成果が次の段階の条件となるため、{start}の結果を整理・確認したうえで{end}に進むことが重要です。順序を省略すると手戻りの原因になります。",
    "実務では、{start}で得られた情報を{end}の担当者に確実に引き継ぎ、前提条件が変わった場合には前の段階に戻って見直すことが求められます。",
};

}  // namespace templates

/// The table: one row per relation type (and per special end label).
inline constexpr RelationTemplates kRelationTemplates[] = {
    {"HAS_CHAPTER", "Volume", templates::kHasVolumeFQ, templates::kHasVolumeRQ, templates::kHasVolumeFA,
     templates::kHasVolumeRA, templates::kHasVolumeP},
    {"HAS_CHAPTER", "", templates::kHasChapterFQ, templates::kHasChapterRQ, templates::kHasChapterFA,
     templates::kHasChapterRA, templates::kHasChapterP},
    {"DESCRIBED_IN", "", templates::kDescribedInFQ, templates::kDescribedInRQ, templates::kDescribedInFA,
     templates::kDescribedInRA, templates::kDescribedInP},
    {"HAS_SECTION", "", templates::kHasSectionFQ, templates::kHasSectionRQ, templates::kHasSectionFA,
     templates::kHasSectionRA, templates::kHasSectionP},
    {"HAS_ITEM", "", templates::kHasItemFQ, templates::kHasItemRQ, templates::kHasItemFA, templates::kHasItemRA,
     templates::kHasItemP},
    {"DEFINED_IN", "", templates::kDefinedInFQ, templates::kDefinedInRQ, templates::kDefinedInFA,
     templates::kDefinedInRA, templates::kDefinedInP},
    {"SUBJECT_TO", "", templates::kSubjectToFQ, templates::kSubjectToRQ, templates::kSubjectToFA,
     templates::kSubjectToRA, templates::kSubjectToP},
    {"USED_IN", "", templates::kUsedInFQ, templates::kUsedInRQ, templates::kUsedInFA, templates::kUsedInRA,
     templates::kUsedInP},
    {"REQUIRES", "", templates::kRequiresFQ, templates::kRequiresRQ, templates::kRequiresFA,
     templates::kRequiresRA, templates::kRequiresP},
    {"AFFECTS", "", templates::kAffectsFQ, templates::kAffectsRQ, templates::kAffectsFA, templates::kAffectsRA,
     templates::kAffectsP},
    {"MITIGATES", "", templates::kMitigatesFQ, templates::kMitigatesRQ, templates::kMitigatesFA,
     templates::kMitigatesRA, templates::kMitigatesP},
    {"PRECEDES", "", templates::kPrecedesFQ, templates::kPrecedesRQ, templates::kPrecedesFA,
     templates::kPrecedesRA, templates::kPrecedesP},
};

/// Templates for a relation type and end-node label; nullptr for an unknown type.
inline const RelationTemplates* find_templates(std::string_view relation, std::string_view end_label) {
  const RelationTemplates* any = nullptr;
  for (const auto& t : kRelationTemplates) {
    if (t.relation != relation) continue;
    if (!t.end_label.empty() && t.end_label == end_label) return &t;
    if (t.end_label.empty() && !any) any = &t;
  }
  return any;
}

// ---------------------------------------------------------------- paraphrase variants
// Applied around a filled question. Openers are sentences or clauses an
// engineer puts before the question; closers ask for the basis or a short
// answer. kPoliteEndings rewrite the question's ending into a politer form.

/// Question openers ("" keeps the question as it is).
inline constexpr std::string_view kQuestionOpeners[] = {
    "",
    "河川砂防技術基準について質問です。",
    "技術基準の内容を確認させてください。",
    "実務で確認したいのですが、",
    "設計の打合せで話題になったのですが、",
    "基準の解釈について教えてください。",
    "若手技術者への説明のために伺います。",
    "現場で判断に迷っています。",
    "河川・砂防の技術基準に関して、",
    "点検計画を作る前に確認したいのですが、",
};

/// Question closers ("" keeps the question as it is).
inline constexpr std::string_view kQuestionClosers[] = {
    "",
    "根拠となる編と章もあわせて教えてください。",
    "簡潔に説明してください。",
    "要点を整理して教えてください。",
    "実務上の留意点があれば、それも教えてください。",
    "該当する基準の箇所も示してください。",
    "分かりやすく教えていただけますか。",
};

/// Ending rewrites {from, to}: the first whose `from` ends the question applies.
struct EndingRewrite {
  std::string_view from, to;
};
inline constexpr EndingRewrite kPoliteEndings[] = {
    {"ありますか？", "あるのでしょうか？"},
    {"ですか？", "でしょうか？"},
    {"ますか？", "ますでしょうか？"},
    {"教えてください。", "教えていただけますか？"},
};

}  // namespace qlora::data
