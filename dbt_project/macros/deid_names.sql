{#-
    Person names for de-identification: the 百家姓 surnames (single and compound), the common
    words that a dictionary name must not be, the name dictionary's sources, the registry
    resolution of a party's kind, and the free-text scrub that uses the dictionary.
-#}

{#- 百家姓 compound surnames plus the few others in use; a name starting with one keeps two characters in its mask -#}
{% macro cn_compound_surnames() -%}
    {{- return((
        '万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 '
        ~ '公孙 仲孙 轩辕 令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空 亓官 司寇 仉督 子车 颛孙 端木 巫马 公西 '
        ~ '漆雕 乐正 壤驷 公良 拓跋 夹谷 宰父 谷梁 段干 百里 东郭 南门 呼延 羊舌 微生 梁丘 左丘 东门 西门 南宫 '
        ~ '第五 太史 独孤 慕容 呼延 欧阳'
    ).split(' ') | unique | list) -}}
{%- endmacro %}

{#- 百家姓 single surnames, plus common modern ones it lacks (肖 闫 覃 付 …) -#}
{% macro cn_single_surnames() -%}
    {{- return((
        '赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎'
        ~ '鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平'
        ~ '黄和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童'
        ~ '颜郭梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗丁宣贲邓郁单杭洪包诸左石崔'
        ~ '吉钮龚程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班仰'
        ~ '秋仲伊宫宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴'
        ~ '胥能苍双闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍郤璩桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹'
        ~ '习宦艾鱼容向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾'
        ~ '辛阚那简饶空曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公岳帅缑亢况有琴商牟佘佴伯赏墨哈谯笪'
        ~ '年爱阳佟言福肖闫覃付揭甯楚迟练原睢'
    ) | list | unique | list) -}}
{%- endmacro %}

{#- SQL text[] literal of a list of strings -#}
{% macro sql_text_array(items) -%}
    array[{% for s in items %}'{{ s }}'{{ ',' if not loop.last }}{% endfor %}]::text[]
{%- endmacro %}

{#- ordinary words that are surname + character(s): never dictionary names, never a name after a title -#}
{% macro cn_name_stopwords() -%}
    {{- return((
        '高效 高兴 高明 高速 高度 文明 安全 安心 方便 方面 周到 周末 周期 平安 平台 明白 明确 明显 金额 田地 '
        ~ '程序 程度 时间 时候 常规 常见 于是 于此 全部 全面 全程 何时 和谐 万分 成功 成本 成为 国家 国内 '
        ~ '东西 广大 通过 通知 能够 有关 有效 相关 后续 后期 红色 都是 那么 空间 利用 越来 越快 师傅 公开 '
        ~ '公平 公正 公司 公示 公共 公众 公务 公告 公布 公章 司法 简单 简便 简化 关于 关注 关键 单位 单独 '
        ~ '包括 左右 石材 家庭 家里 家属 车辆 车间 山区 谷歌 宫殿 宁可 从而 从事 从来 双方 申请 申报 申诉 '
        ~ '尚未 农业 农村 温馨 庄园 容易 向前 古代 易懂 步骤 满意 满分 匡正 国际 文件 文字 欧元 越是 '
        ~ '费用 任何 任务 元旦 常年 乐意 齐全 康复 余额 顾客 平时 黄色 米饭 计划 成绩 宋体 董事 梁柱 '
        ~ '江苏 童年 颜色 梅花 林业 钟表 徐徐 高级 夏天 田野 胡乱 万元 支持 管理 经营 经过 经办 房屋 '
        ~ '应该 应当 宗旨 丁点 宣传 单据 洪水 包装 石头 吉祥 龚某 程式 荣誉 曲线 封面 段落 富裕 山东 '
        ~ '车位 全市 全区 全县 班级 秋天 仲裁 伊始 宫颈 宁静 甘肃 符合 景区 龙头 叶子 司机 黎明 印章 '
        ~ '白天 怀疑 蒙古 池塘 阴天 能力 双休 党员 申明 桑拿 桂林 寿命 通常 边境 燕子 尚且 温度 庄重 '
        ~ '连续 连接 习惯 艾滋 鱼类 古老 易于 戈壁 居民 居住 衡量 步行 都市 满足 弘扬 国务 文化 广告 '
        ~ '东部 欧洲 利益 越过 隆重 师生 巩固 聂某 冷静 辛苦 简历 沙发 丰富 关闭 相应 查询 查看 后面 '
        ~ '红包 游客 权利 权益 盖章 益处 岳父 帅气 有限 有些 言论 福利 楚天 迟到 练习 原因 原件 原来'
    ).split(' ') | unique | list) -}}
{%- endmacro %}

{#- The one place free text is scrubbed: ID numbers, phones, landlines, e-mails, the record's own
    names, the dictionary names found in the text (`hits`: the alias of a dictionary_hits join,
    see below), and names after a title (util.scrub_text). -#}
{% macro scrub_free_text(text_expr, record_names='array[]::text[]', hits=none) -%}
    util.scrub_text(
        {{ text_expr }},
        {{ record_names }}
        {%- if hits %} || coalesce({{ hits }}.names, array[]::text[]){% endif %}
    )
{%- endmacro %}

{#- Every first character a dictionary name can start with (the single surnames and the compound
    surnames' first characters), as a SQL text[] literal -#}
{% macro cn_surname_initials() -%}
    {%- set initials = cn_single_surnames() + (cn_compound_surnames() | map('first') | list) -%}
    {{- sql_text_array(initials | unique | sort) -}}
{%- endmacro %}

{#- The dictionary names in a set of texts, found once for all of them: `texts` is a select of one
    column; the result has one row per distinct text that holds a name, (text, names).
    Set-based: each distinct text is probed once, however many records carry it, and only the 2–4
    character windows that start at a surname character (every dictionary name starts with one);
    the windows meet the dictionary in one hash join. Join it on the text and pass its alias to
    scrub_free_text as `hits`. -#}
{% macro dictionary_hits(texts) -%}
    select t.text, array_agg(distinct w.name) as names
    from (select distinct x.text from ({{ texts }}) as x (text) where length(x.text) >= 2) as t
    cross join lateral generate_series(1, length(t.text) - 1) as i
    cross join lateral (values (substr(t.text, i, 2)), (substr(t.text, i, 3)), (substr(t.text, i, 4))) as w (name)
    inner join {{ ref('deid_person_names') }} as d on d.name = w.name
    where substr(t.text, i, 1) = any ({{ cn_surname_initials() }})
    group by t.text
{%- endmacro %}

{#- Free texts without names of their own record (evaluation comments), scrubbed once per distinct
    text: one row per text, (text, scrubbed) = util.scrub_text(text, its dictionary names). Join it on
    the text; a high-volume source with a few thousand distinct texts then scrubs a few thousand
    times, not once per record. -#}
{% macro scrubbed_texts(texts) -%}
    select t.text, util.scrub_text(t.text, h.names) as scrubbed
    from (select distinct x.text from ({{ texts }}) as x (text) where x.text is not null) as t
    left join ({{ dictionary_hits(texts) }}) as h on h.text = t.text
{%- endmacro %}

{#- The texts `text_expr` of the raw versions an incremental staging model reads in this run
    (every version on a full refresh, those of changed records otherwise): dictionary_hits' input. -#}
{% macro raw_texts(source_name, table_name, text_expr) -%}
    select {{ text_expr }} from {{ source(source_name, table_name) }}
    {%- if is_incremental() %}
    where record_id in ({{ changed_record_ids(source(source_name, table_name)) }})
    {%- endif %}
{%- endmacro %}

{#- Left joins of the registry's kinds (deid.registry_parties) by a party's code and by its name. -#}
{% macro registry_party_joins(code_expr, name_expr) -%}
    left join {{ ref('deid_registry_parties') }} as reg_code
        on reg_code.party_key = 'code:' || {{ code_expr }}
    left join {{ ref('deid_registry_parties') }} as reg_name
        on reg_name.party_key = 'name:' || {{ name_expr }}
{%- endmacro %}

{#-
    Whether a party is (or cannot be ruled out as) a person — its name is then pseudonymised and masked:
    1. its own type says so (自然人 / 个体工商户), or its code is a 个体工商户's (92…, 00000000000000000X);
    2. the registry (market-supervision entities) lists its code — failing that its name — as a 个体工商户;
    3. nothing establishes it as an organisation: no valid 统一社会信用代码 other than 92… (and not
       starting with 0: `000000000000000000` passes the check digit), the registry does
       not list it (by code, then by name) as 企业 / 农民专业合作社, and no type field of its own says
       so (`org_type_expr`).
    Needs registry_party_joins in the FROM clause (unless registry=false: the registry itself).
-#}
{% macro party_is_person(code_expr, person_type_expr='false', org_type_expr='false', registry=true) -%}
    (
        coalesce({{ person_type_expr }}, false)
        or coalesce({{ code_expr }} like '92%' or {{ code_expr }} = '00000000000000000X', false)
        {%- if registry %}
        or coalesce(reg_code.is_person, reg_name.is_person, false)
        {%- endif %}
        or not (
            {#- eighteen zeros pass the check digit, yet name no one: a real code never starts with 0 #}
            coalesce(util.uscc_is_valid({{ code_expr }}) and {{ code_expr }} !~ '^(0|92)', false)
            {%- if registry %}
            or coalesce(reg_code.is_organisation, reg_name.is_organisation, false)
            {%- endif %}
            or coalesce({{ org_type_expr }}, false)
        )
    )
{%- endmacro %}
